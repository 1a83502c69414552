"""checkov, the second template scanner, passes over every synthesized template.

`make checkov` scans the templates `cdk synth` writes; this test scans the same two variants
(default app, fleet package template) synthesized in-process, so `pytest` alone catches a
construct that checkov would fail. Skips live in .checkov.yaml, each with its reason.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.stack_support import fleet_workshop, workshop

ROOT = Path(__file__).resolve().parents[1]
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
CONFIG = ROOT / ".checkov.yaml"


def skip_lines() -> list[str]:
    text = CONFIG.read_text(encoding="utf-8")
    block = text.split("skip-check:", 1)[1]
    return [line.strip() for line in block.splitlines() if line.strip().startswith("- ")]


def test_every_skipped_check_has_a_one_line_reason():
    lines = skip_lines()
    assert lines
    for line in lines:
        match = re.fullmatch(r"- (CKV2?_AWS_\d+)\s+#\s*(.+)", line)
        assert match, f"{line!r}: a skip is '- CKV_AWS_N  # reason'"
        assert len(match.group(2).split()) >= 5, f"{line!r}: say why"


@pytest.mark.parametrize("variant", ["default", "fleet"])
def test_checkov_passes(variant, tmp_path):
    assert CHECKOV.is_file(), f"{CHECKOV} is missing: run `make install`"
    _, template = workshop() if variant == "default" else fleet_workshop()
    path = tmp_path / f"{variant}.template.json"
    path.write_text(json.dumps(template.to_json()))
    result = subprocess.run(
        [str(CHECKOV), "--config-file", str(CONFIG), "--file", str(path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Failed checks: 0" in result.stdout
