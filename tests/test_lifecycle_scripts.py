"""The notebook lifecycle scripts, run for real with bash against moto's S3 server."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from stacks.notebook import LIFECYCLE_DIR, NOTEBOOK_PATH, on_start_values, render_lifecycle_script
from tests.conftest import moto_server_url

REGION = "us-east-1"


@pytest.fixture(scope="module")
def s3_endpoint():
    with moto_server_url() as url:
        yield url


def _stub(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/bash\n{body}\n")
    path.chmod(0o755)


@pytest.fixture
def sandbox(tmp_path, s3_endpoint):
    """A fake root: stubbed chown/crontab/systemctl first on PATH, AWS pointed at moto."""
    bin_dir = tmp_path / "stubs"
    bin_dir.mkdir()
    calls = tmp_path / "calls.log"
    _stub(bin_dir, "chown", f'echo "chown $*" >> {calls}')
    _stub(bin_dir, "sudo", f'echo "sudo $*" >> {calls}; "$@"')
    _stub(bin_dir, "systemctl", f'echo "systemctl $*" >> {calls}')
    _stub(bin_dir, "dnf", f'echo "dnf $*" >> {calls}; exit 1')
    crontab = tmp_path / "crontab.txt"
    _stub(
        bin_dir,
        "crontab",
        f'if [ "$1" = "-l" ]; then [ -f {crontab} ] && cat {crontab} || exit 1; '
        f'elif [ "$1" = "-" ]; then cat > {crontab}; fi',
    )
    env = {
        "PATH": f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(tmp_path / "root"),
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "SECML_PYTHON": sys.executable,
        "SECML_SAGEMAKER_HOME": str(tmp_path / "home/ec2-user/SageMaker"),
        "SECML_AUTOSTOP_DIR": str(tmp_path / "usr/local/bin"),
    }
    return {"root": tmp_path, "env": env, "calls": calls, "crontab": crontab}


def _run(script: str, sandbox: dict) -> subprocess.CompletedProcess:
    path = sandbox["root"] / "script.sh"
    path.write_text(script)
    return subprocess.run(
        ["bash", str(path)], env=sandbox["env"], capture_output=True, text=True, timeout=60
    )


def _on_create(bucket: str, key: str) -> str:
    return render_lifecycle_script(
        "on_create.sh",
        {
            "NOTEBOOK_BUCKET": bucket,
            "NOTEBOOK_KEY": key,
            "NOTEBOOK_FILE": NOTEBOOK_PATH.name,
            "REGION": REGION,
            "STACK_NAME": "SecmlTest",
            "DATA_BUCKET": "data-bucket",
            "TUPLES_BUCKET": "tuples-bucket",
            "TRAIN_KEY": "train/cloudtrail_tuples.csv",
            "INFER_KEY": "infer/guardduty_tuples.csv",
            "TRUTH_KEY": "truth.csv",
        },
    )


def test_on_create_copies_the_notebook_and_writes_the_config_for_ec2_user(sandbox, s3_endpoint):
    s3 = boto3.client(
        "s3",
        region_name=REGION,
        endpoint_url=s3_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket="cdk-assets")
    s3.put_object(Bucket="cdk-assets", Key="abc123.ipynb", Body=NOTEBOOK_PATH.read_bytes())

    result = _run(_on_create("cdk-assets", "abc123.ipynb"), sandbox)
    assert result.returncode == 0, result.stderr

    home = Path(sandbox["env"]["SECML_SAGEMAKER_HOME"])
    assert (home / NOTEBOOK_PATH.name).read_bytes() == NOTEBOOK_PATH.read_bytes()
    config = json.loads((home / "workshop_config.json").read_text())
    assert config == {
        "stack_name": "SecmlTest",
        "region": REGION,
        "data_bucket": "data-bucket",
        "tuples_bucket": "tuples-bucket",
        "train_key": "train/cloudtrail_tuples.csv",
        "infer_key": "infer/guardduty_tuples.csv",
        "truth_key": "truth.csv",
    }
    calls = sandbox["calls"].read_text()
    assert (
        f"chown ec2-user:ec2-user {home / NOTEBOOK_PATH.name} {home / 'workshop_config.json'}"
        in calls
    )


def test_on_create_fails_when_the_notebook_cannot_be_fetched(sandbox):
    result = _run(_on_create("no-such-bucket", "missing.ipynb"), sandbox)
    assert result.returncode != 0
    assert not (Path(sandbox["env"]["SECML_SAGEMAKER_HOME"]) / "workshop_config.json").exists()


def test_on_start_installs_the_embedded_autostop_script_in_cron_once(sandbox):
    script = render_lifecycle_script("on_start.sh", on_start_values(idle_minutes=45, region=REGION))
    for _ in range(2):  # every start runs it again: still one cron line
        result = _run(script, sandbox)
        assert result.returncode == 0, result.stderr

    installed = Path(sandbox["env"]["SECML_AUTOSTOP_DIR"]) / "secml-autostop.py"
    assert installed.read_text().rstrip("\n") == (LIFECYCLE_DIR / "autostop.py").read_text().rstrip(
        "\n"
    )
    assert os.access(installed, os.X_OK)
    lines = sandbox["crontab"].read_text().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"*/5 * * * * {sys.executable} {installed} --idle-minutes 45")
    assert f"--region {REGION}" in lines[0]
    help_text = subprocess.run(
        [sys.executable, str(installed), "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--idle-minutes" in help_text


def _autostop():
    spec = importlib.util.spec_from_file_location("secml_autostop", LIFECYCLE_DIR / "autostop.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


NOW = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


def _kernel(state: str, minutes_ago: float) -> dict:
    stamp = (NOW - dt.timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")
    return {"id": state + str(minutes_ago), "execution_state": state, "last_activity": stamp}


@pytest.mark.parametrize(
    ("activities", "nothing_open_since", "idle"),
    [
        ([_kernel("idle", 61)], None, True),
        ([_kernel("idle", 59)], None, False),
        ([_kernel("idle", 90), _kernel("idle", 5)], None, False),
        ([_kernel("busy", 600)], None, False),
        ([], NOW - dt.timedelta(minutes=61), True),
        ([], NOW - dt.timedelta(minutes=10), False),
        ([], None, False),
        ([{"id": "t", "name": "1"}], None, False),
    ],
)
def test_autostop_idle_rule(activities, nothing_open_since, idle):
    assert _autostop().is_idle(activities, NOW, 60, nothing_open_since) is idle
