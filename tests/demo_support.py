"""Shared by the demo tests: a reduced copy of the committed workshop dataset."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import ROOT

WORKSHOP = ROOT / "data" / "workshop"
# Fast training settings: the tests check the plumbing and the report, not the model.
FAST = ["--epochs", "1", "--vector-dim", "16", "--no-progress"]


def reduced_workshop_dataset(out: Path, days: int = 3) -> Path:
    """The workshop dataset with `days` days of CloudTrail instead of all fourteen."""
    shutil.copytree(WORKSHOP / "guardduty", out / "guardduty")
    shutil.copy(WORKSHOP / "truth.csv", out / "truth.csv")
    day_dirs = sorted({p.parent for p in (WORKSHOP / "cloudtrail").rglob("*.json.gz")})
    for day in day_dirs[:days]:
        shutil.copytree(day, out / day.relative_to(WORKSHOP))
    return out
