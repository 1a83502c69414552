"""Live progress for a fleet run: a rich table on a terminal, one line per account otherwise."""

from __future__ import annotations

from typing import Any

from secml.fleet.roster import Target
from secml.fleet.runner import RunSummary

MAX_ROWS = 15
STYLE = {
    "deployed": "green",
    "deleted": "green",
    "failed": "red",
    "delete_failed": "red",
    "in_progress": "yellow",
}


class ProgressView:
    def __init__(self, title: str, total: int, *, console: Any | None = None) -> None:
        from rich.console import Console

        self.title = title
        self.total = total
        self.console = console or Console(stderr=True)
        self.live: Any = None
        self._printed: set[str] = set()

    def __enter__(self) -> ProgressView:
        if self.console.is_terminal:
            from rich.live import Live

            self.live = Live(
                self._render(RunSummary(), {}), console=self.console, refresh_per_second=4
            )
            self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def __call__(self, summary: RunSummary, active: dict[str, Target]) -> None:
        if self.live is not None:
            self.live.update(self._render(summary, active))
            return
        for key, entry in summary.results.items():
            if key in self._printed or key in summary.skipped:
                continue
            self._printed.add(key)
            todo = self.total - len(summary.skipped)
            line = f"[{len(self._printed)}/{todo}] {key} {entry.status}"
            self.console.print(line + (f"  {entry.error}" if entry.error else ""), highlight=False)

    def _render(self, summary: RunSummary, active: dict[str, Target]) -> Any:
        from rich.table import Table

        counts = summary.counts()
        done = len(summary.results)
        parts = [f"{done}/{self.total} done", f"{len(active)} running"]
        parts += [f"{n} {status}" for status, n in sorted(counts.items())]
        if summary.skipped:
            parts.append(f"{len(summary.skipped)} already done (skipped)")
        table = Table(title=f"{self.title}: " + ", ".join(parts), expand=False)
        for column in ("account", "region", "attendee", "status", "detail"):
            table.add_column(column, overflow="fold")
        rows = 0
        for target in list(active.values())[:MAX_ROWS]:
            table.add_row(target.account_id, target.region, target.attendee, "running", "")
            rows += 1
        failures = [e for e in summary.results.values() if e.status in ("failed", "delete_failed")]
        for entry in failures[-(MAX_ROWS - rows) :] if rows < MAX_ROWS else []:
            style = STYLE.get(entry.status, "")
            table.add_row(
                entry.account_id,
                entry.region,
                entry.attendee,
                f"[{style}]{entry.status}[/]",
                entry.error[:120],
            )
        return table
