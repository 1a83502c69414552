"""Run one job per account, concurrently, isolating failures and recording every result.

The pattern: a ``ThreadPoolExecutor`` of ``parallel`` workers (the work is waiting on AWS APIs,
so threads overlap well); each job opens its own session (``session_factory(target)``), so no
boto3 object is shared between threads; every outcome, including an exception, becomes an
``AccountState`` written to the state file at once. Accounts the state already shows as done
are skipped, which is what makes a re-run after Ctrl-C cheap.
"""

from __future__ import annotations

import csv
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secml.fleet.aws import describe_error
from secml.fleet.roster import Target
from secml.fleet.state import FAILED, IN_PROGRESS, AccountState, StateFile

Job = Callable[[Any, Target], AccountState]  # (session, target) -> new state
REPORT_FIELDS = ["account_id", "region", "attendee", "status", "notebook_url", "error"]


@dataclass
class RunSummary:
    results: dict[str, AccountState] = field(default_factory=dict)  # key -> state after run
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def counts(self) -> Counter:
        return Counter(s.status for s in self.results.values())


def run_fleet(
    targets: Sequence[Target],
    job: Job,
    *,
    state: StateFile,
    session_factory: Callable[[Target], Any],
    parallel: int = 20,
    is_done: Callable[[AccountState | None], bool] = lambda s: False,
    failed_status: str = FAILED,
    on_result: Callable[[AccountState], None] | None = None,
    show: Callable[[RunSummary, dict[str, Target]], None] | None = None,
) -> RunSummary:
    summary = RunSummary()
    todo: list[Target] = []
    for target in targets:
        previous = state.get(target.key)
        if is_done(previous):
            summary.skipped.append(target.key)
            summary.results[target.key] = previous  # type: ignore[assignment]
        else:
            todo.append(target)

    active: dict[str, Target] = {}

    def work(target: Target) -> AccountState:
        active[target.key] = target
        previous = state.get(target.key)
        state.update(
            AccountState(
                account_id=target.account_id,
                region=target.region,
                attendee=target.attendee,
                status=IN_PROGRESS,
                stack_id=previous.stack_id if previous else "",
                fingerprint=previous.fingerprint if previous else "",
            )
        )
        try:
            result = job(session_factory(target), target)
        except Exception as exc:  # isolate: one account's problem is that account's row
            result = AccountState(
                account_id=target.account_id,
                region=target.region,
                attendee=target.attendee,
                status=failed_status,
                stack_id=previous.stack_id if previous else "",
                error=describe_error(exc),
            )
        finally:
            active.pop(target.key, None)
        state.update(result)
        return result

    started = time.monotonic()
    executor = ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="fleet")
    try:
        pending: set[Future] = {executor.submit(work, t) for t in todo}
        while pending:
            done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            for future in done:
                result = future.result()
                summary.results[result.key] = result
                if on_result:
                    on_result(result)
            if show:
                show(summary, dict(active))
    except BaseException:
        # Ctrl-C: start nothing new; the accounts in flight finish and are recorded.
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        summary.seconds = time.monotonic() - started
    executor.shutdown(wait=True)
    return summary


def write_report(path: Path, targets: Sequence[Target], state: StateFile) -> None:
    """The facilitator's CSV, one row per roster line, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=REPORT_FIELDS)
            writer.writeheader()
            for target in targets:
                entry = state.get(target.key) or AccountState(target.account_id, target.region)
                writer.writerow(
                    {
                        "account_id": target.account_id,
                        "region": target.region,
                        "attendee": target.attendee,
                        "status": entry.status,
                        "notebook_url": entry.notebook_url,
                        "error": entry.error,
                    }
                )
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
