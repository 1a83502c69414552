"""The local record of a fleet run, so that an interrupted run resumes where it stopped.

One JSON file, rewritten whole after every change (write to a temporary file in the same
directory, fsync, ``os.replace``): a crash or Ctrl-C leaves the previous or the new version,
never half of one. Worker threads report through ``update``; a lock serialises the writes.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from secml.errors import SecmlError

STATE_VERSION = 1

# Statuses an account can be in. "in_progress" is only ever seen after an interruption.
PENDING = "pending"
IN_PROGRESS = "in_progress"
DEPLOYED = "deployed"
FAILED = "failed"
DELETED = "deleted"
DELETE_FAILED = "delete_failed"
SKIPPED = "skipped"  # reported for this run only; never stored


@dataclass
class AccountState:
    account_id: str
    region: str
    attendee: str = ""
    status: str = PENDING
    stack_id: str = ""
    notebook_url: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    error: str = ""
    leftovers: list[str] = field(default_factory=list)
    fingerprint: str = ""  # template + parameters that were deployed
    updated_at: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.account_id}/{self.region}"


class StateFile:
    def __init__(self, path: Path, stack_name: str) -> None:
        self.path = path
        self.stack_name = stack_name
        self._lock = threading.Lock()
        self.accounts: dict[str, AccountState] = {}
        if path.exists():
            self._load()

    def _load(self) -> None:
        try:
            raw = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            raise SecmlError(f"cannot read state file {self.path}: {exc}") from exc
        if raw.get("version") != STATE_VERSION:
            raise SecmlError(f"{self.path}: unknown state version {raw.get('version')!r}")
        if raw.get("stack_name") != self.stack_name:
            raise SecmlError(
                f"{self.path} records stack {raw.get('stack_name')!r}, not {self.stack_name!r}; "
                "use --state to pick another file"
            )
        known = set(AccountState.__dataclass_fields__)
        for key, entry in raw.get("accounts", {}).items():
            self.accounts[key] = AccountState(**{k: v for k, v in entry.items() if k in known})

    def get(self, key: str) -> AccountState | None:
        with self._lock:
            return self.accounts.get(key)

    def update(self, entry: AccountState) -> None:
        entry.updated_at = time.time()
        with self._lock:
            self.accounts[entry.key] = entry
            self._write()

    def _write(self) -> None:
        payload: dict[str, Any] = {
            "version": STATE_VERSION,
            "stack_name": self.stack_name,
            "accounts": {k: asdict(v) for k, v in sorted(self.accounts.items())},
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(payload, fh, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
