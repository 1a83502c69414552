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

from secml.errors import SecmlError, short

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


def read_state_json(path: Path) -> dict[str, Any]:
    """The state file's JSON, checked for shape: a corrupt or foreign file is one clear line
    (never taken for "no state file", and never overwritten by a run)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SecmlError(f"no state file {path}") from None
    except IsADirectoryError:
        raise SecmlError(f"state file {path} is a folder") from None
    except OSError as exc:
        raise SecmlError(f"cannot read state file {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise SecmlError(f"state file {path} is corrupt (not JSON: {str(exc)[:100]})") from None
    if not isinstance(raw, dict) or "version" not in raw:
        raise SecmlError(f'{path} is not a fleet state file (no "version" key)')
    if raw.get("version") != STATE_VERSION:
        raise SecmlError(f"{path}: unknown state version {short(raw.get('version'))}")
    accounts = raw.get("accounts", {})
    if not isinstance(raw.get("stack_name"), str) or not isinstance(accounts, dict):
        raise SecmlError(f"{path}: not a fleet state file (stack_name or accounts of wrong type)")
    for key, entry in accounts.items():
        if not isinstance(entry, dict):
            kind = type(entry).__name__
            raise SecmlError(f"{path}: account {short(key)} is a {kind}, not an object")
    raw["accounts"] = accounts
    return raw


class StateFile:
    def __init__(self, path: Path, stack_name: str) -> None:
        self.path = path
        self.stack_name = stack_name
        self._lock = threading.Lock()
        self.accounts: dict[str, AccountState] = {}
        if path.exists():
            self._load()

    def _load(self) -> None:
        raw = read_state_json(self.path)
        if raw.get("stack_name") != self.stack_name:
            raise SecmlError(
                f"{self.path} records stack {short(raw.get('stack_name'))}, "
                f"not {self.stack_name!r}; "
                "use --state to pick another file"
            )
        known = set(AccountState.__dataclass_fields__)
        for key, entry in raw["accounts"].items():
            try:
                self.accounts[key] = AccountState(**{k: v for k, v in entry.items() if k in known})
            except TypeError as exc:  # account_id or region missing
                raise SecmlError(
                    f"{self.path}: account {short(key)} is incomplete ({exc})"
                ) from None

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
