"""`python -m secml ...` never prints jsii's Node.js end-of-life banner (issue 13)."""

import os
import subprocess
import sys
from pathlib import Path

from secml.cli import JSII_SILENCED, silence_jsii_node_banner

ROOT = Path(__file__).resolve().parents[1]
# Stands in for `fleet package`, whose synth takes a minute: the command starts jsii (importing
# constructs does) from inside `secml.cli.main`, and a child process inherits the environment.
SCRIPT = """
import subprocess, sys
import secml.fleet.cli as fleet

def run_package(args):
    import constructs  # starts the jsii runtime (node) in this process
    child = "import constructs"
    return subprocess.run([sys.executable, "-c", child], check=True).returncode

fleet.run_package = run_package
from secml.cli import main
raise SystemExit(main(["fleet", "package", "--out", "unused"]))
"""


def _node_major() -> str:
    out = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip().lstrip("v").split(".")[0]


def test_the_node_version_in_use_is_on_the_silenced_list():
    env: dict[str, str] = {}
    silence_jsii_node_banner(env)
    for name in JSII_SILENCED:
        assert _node_major() in env[name].split(",")
    mine = {JSII_SILENCED[0]: "18"}
    silence_jsii_node_banner(mine)
    assert mine[JSII_SILENCED[0]] == "18"  # a facilitator's own setting is kept


def test_no_banner_from_the_cli_or_the_processes_it_starts(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JSII_SILENCE")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "end-of-life" not in done.stderr + done.stdout
    assert "!!!!" not in done.stderr + done.stdout
