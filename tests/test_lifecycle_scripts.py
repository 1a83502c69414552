"""The notebook lifecycle scripts, run for real with bash against moto's S3 server.

Tools an instance may lack (python with boto3, cron, systemd, the conda env) are taken away
with fake PATHs and the scripts' test-only variables; the scripts must carry on and say so.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from stacks.notebook import (
    HELPERS_PATH,
    LIFECYCLE_DIR,
    NOTEBOOK_PATH,
    on_start_values,
    render_lifecycle_script,
    sdk_requirements,
)
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
    """A fake root: stubbed chown/sudo/crontab/systemctl/dnf first on PATH, AWS pointed at
    moto, no systemd running, no conda env to build the SDK kernel from."""
    bin_dir = tmp_path / "stubs"
    bin_dir.mkdir()
    calls = tmp_path / "calls.log"
    _stub(bin_dir, "chown", f'echo "chown $*" >> {calls}')
    _stub(bin_dir, "sudo", f'echo "sudo $*" >> {calls}; shift 2; "$@"')  # sudo -u ec2-user ...
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
        "SECML_PYTHON_CANDIDATES": sys.executable,
        "SECML_SAGEMAKER_HOME": str(tmp_path / "home/ec2-user/SageMaker"),
        "SECML_AUTOSTOP_DIR": str(tmp_path / "usr/local/bin"),
        "SECML_SYSTEMD_DIR": str(tmp_path / "etc/systemd/system"),
        "SECML_SYSTEMD_RUNTIME": str(tmp_path / "run/systemd/system"),  # absent: no systemd
        "SECML_SDK_VENV": str(tmp_path / "home/ec2-user/SageMaker/.secml-sdk-v3"),
        "SECML_KERNEL_BASE_PYTHON": str(tmp_path / "no-conda/bin/python"),
        "SECML_KERNELS_DIR": str(tmp_path / "home/ec2-user/.local/share/jupyter/kernels"),
    }
    return {"root": tmp_path, "bin": bin_dir, "env": env, "calls": calls, "crontab": crontab}


def _run(script: str, sandbox: dict) -> subprocess.CompletedProcess:
    path = sandbox["root"] / "script.sh"
    path.write_text(script)
    return subprocess.run(
        ["bash", str(path)], env=sandbox["env"], capture_output=True, text=True, timeout=60
    )


def _on_create(bucket: str, key: str, helpers_key: str = "def456.py") -> str:
    return render_lifecycle_script(
        "on_create.sh",
        {
            "NOTEBOOK_BUCKET": bucket,
            "NOTEBOOK_KEY": key,
            "NOTEBOOK_FILE": NOTEBOOK_PATH.name,
            "HELPERS_BUCKET": bucket,
            "HELPERS_KEY": helpers_key,
            "HELPERS_FILE": HELPERS_PATH.name,
            "SDK_REQUIREMENTS": sdk_requirements(),
            "REGION": REGION,
            "STACK_NAME": "SecmlTest",
            "DATA_BUCKET": "data-bucket",
            "TUPLES_BUCKET": "tuples-bucket",
            "TRAIN_KEY": "train/cloudtrail_tuples.csv",
            "INFER_KEY": "infer/guardduty_tuples.csv",
            "TRUTH_KEY": "truth.csv",
        },
    )


def _on_start(idle_minutes: int = 45) -> str:
    return render_lifecycle_script(
        "on_start.sh", on_start_values(idle_minutes=idle_minutes, region=REGION)
    )


def _assets(s3_endpoint: str) -> None:
    s3 = boto3.client(
        "s3",
        region_name=REGION,
        endpoint_url=s3_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket="cdk-assets")
    s3.put_object(Bucket="cdk-assets", Key="abc123.ipynb", Body=NOTEBOOK_PATH.read_bytes())
    s3.put_object(Bucket="cdk-assets", Key="def456.py", Body=HELPERS_PATH.read_bytes())


EXPECTED_CONFIG = {
    "stack_name": "SecmlTest",
    "region": REGION,
    "data_bucket": "data-bucket",
    "tuples_bucket": "tuples-bucket",
    "train_key": "train/cloudtrail_tuples.csv",
    "infer_key": "infer/guardduty_tuples.csv",
    "truth_key": "truth.csv",
}


def test_on_create_copies_notebook_helpers_and_config_for_ec2_user(sandbox, s3_endpoint):
    _assets(s3_endpoint)
    result = _run(_on_create("cdk-assets", "abc123.ipynb"), sandbox)
    assert result.returncode == 0, result.stderr

    home = Path(sandbox["env"]["SECML_SAGEMAKER_HOME"])
    assert (home / NOTEBOOK_PATH.name).read_bytes() == NOTEBOOK_PATH.read_bytes()
    assert (home / HELPERS_PATH.name).read_bytes() == HELPERS_PATH.read_bytes()
    assert json.loads((home / "workshop_config.json").read_text()) == EXPECTED_CONFIG
    owned = [home / NOTEBOOK_PATH.name, home / HELPERS_PATH.name, home / "workshop_config.json"]
    assert f"chown ec2-user:ec2-user {' '.join(map(str, owned))}" in sandbox["calls"].read_text()
    # no conda env here: said in the log, and the instance is not failed for it
    assert "the SageMaker SDK kernel is not installed" in result.stderr


def test_on_create_fails_when_the_notebook_cannot_be_fetched(sandbox):
    result = _run(_on_create("no-such-bucket", "missing.ipynb"), sandbox)
    assert result.returncode != 0
    assert not (Path(sandbox["env"]["SECML_SAGEMAKER_HOME"]) / "workshop_config.json").exists()


def test_on_create_falls_back_to_the_aws_cli_without_a_python_with_boto3(sandbox):
    """Issue 12 item 10: no python with boto3 must not fail the instance."""
    cli_log = sandbox["root"] / "aws.log"
    _stub(sandbox["bin"], "aws", f'echo "aws $*" >> {cli_log}; echo "fetched $6" > "$7"')
    _stub(sandbox["bin"], "python-without-boto3", "exit 1")
    sandbox["env"]["SECML_PYTHON_CANDIDATES"] = str(sandbox["bin"] / "python-without-boto3")
    result = _run(_on_create("cdk-assets", "abc123.ipynb"), sandbox)
    assert result.returncode == 0, result.stderr
    assert "no python3 with boto3, fetching with the AWS CLI" in result.stdout

    home = Path(sandbox["env"]["SECML_SAGEMAKER_HOME"])
    assert cli_log.read_text().splitlines() == [
        f"aws s3 cp --only-show-errors --region {REGION} s3://cdk-assets/abc123.ipynb "
        f"{home / NOTEBOOK_PATH.name}",
        f"aws s3 cp --only-show-errors --region {REGION} s3://cdk-assets/def456.py "
        f"{home / HELPERS_PATH.name}",
    ]
    assert (home / HELPERS_PATH.name).read_text() == "fetched s3://cdk-assets/def456.py\n"
    assert json.loads((home / "workshop_config.json").read_text()) == EXPECTED_CONFIG


def test_on_create_without_any_way_to_fetch_says_so(sandbox):
    _stub(sandbox["bin"], "python-without-boto3", "exit 1")
    sandbox["env"]["SECML_PYTHON_CANDIDATES"] = str(sandbox["bin"] / "python-without-boto3")
    sandbox["env"]["PATH"] = f"{sandbox['bin']}:/bin"  # no aws here
    result = _run(_on_create("cdk-assets", "abc123.ipynb"), sandbox)
    assert result.returncode == 1
    assert "neither a python3 with boto3 nor the AWS CLI" in result.stderr


def test_on_create_installs_the_sdk_kernel_in_the_background(sandbox, s3_endpoint):
    """The install takes minutes: on-create must return at once, the kernel appear later."""
    _assets(s3_endpoint)
    pip_log = sandbox["root"] / "pip.log"
    venv = Path(sandbox["env"]["SECML_SDK_VENV"])
    base = sandbox["root"] / "conda/bin/python"
    base.parent.mkdir(parents=True)
    release = sandbox["root"] / "release-pip"
    # the venv's pip runs until the test releases it; the fake conda python makes the venv
    _stub(
        sandbox["root"],
        "pip-template",
        f"for i in $(seq 600); do [ -f {release} ] && break; sleep 0.1; done\n"
        f'echo "pip $*" >> {pip_log}',
    )
    _stub(
        base.parent,
        "python",
        '[ "$1 $2 $3" = "-m venv --system-site-packages" ] || exit 9\n'
        'mkdir -p "$4/bin" && cp /bin/true "$4/bin/python"\n'
        f'cp {sandbox["root"] / "pip-template"} "$4/bin/pip"',
    )
    sandbox["env"]["SECML_KERNEL_BASE_PYTHON"] = str(base)
    result = _run(_on_create("cdk-assets", "abc123.ipynb"), sandbox)
    assert result.returncode == 0, result.stderr
    assert f"installing {sdk_requirements()} in the background" in result.stdout
    kernel = Path(sandbox["env"]["SECML_KERNELS_DIR"]) / "secml-sdk-v3" / "kernel.json"
    assert not kernel.exists() and not pip_log.exists()  # on-create did not wait for pip

    release.touch()
    deadline = time.monotonic() + 30
    while not kernel.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    spec = json.loads(kernel.read_text())
    assert spec["argv"][:3] == [str(venv / "bin/python"), "-m", "ipykernel_launcher"]
    assert spec["display_name"] == "secml (SageMaker SDK v3)"
    pip_args = pip_log.read_text().split()
    assert pip_args[:2] == ["pip", "install"] and pip_args[-2:] == sdk_requirements().split()
    assert "installed" in Path(f"{venv}.log").read_text()
    assert "sudo -u ec2-user" in sandbox["calls"].read_text()  # not root's files


def test_on_start_installs_a_systemd_timer_where_systemd_runs(sandbox):
    """Amazon Linux 2023 notebook instances run systemd and may lack cron."""
    Path(sandbox["env"]["SECML_SYSTEMD_RUNTIME"]).mkdir(parents=True)
    units = Path(sandbox["env"]["SECML_SYSTEMD_DIR"])
    units.mkdir(parents=True)
    (sandbox["bin"] / "crontab").unlink()
    result = _run(_on_start(), sandbox)
    assert result.returncode == 0, result.stderr
    assert "installed (systemd timer)" in result.stdout

    installed = Path(sandbox["env"]["SECML_AUTOSTOP_DIR"]) / "secml-autostop.py"
    service = (units / "secml-autostop.service").read_text()
    assert (
        f"ExecStart={sys.executable} {installed} --idle-minutes 45 --region {REGION}\n" in service
    )
    assert "Type=oneshot" in service
    timer = (units / "secml-autostop.timer").read_text()
    assert "OnUnitActiveSec=5min" in timer and "WantedBy=timers.target" in timer
    calls = sandbox["calls"].read_text().splitlines()
    assert "systemctl enable --now secml-autostop.timer" in calls


def test_on_start_falls_back_to_cron_when_the_timer_cannot_be_enabled(sandbox):
    Path(sandbox["env"]["SECML_SYSTEMD_RUNTIME"]).mkdir(parents=True)
    Path(sandbox["env"]["SECML_SYSTEMD_DIR"]).mkdir(parents=True)
    _stub(sandbox["bin"], "systemctl", f'echo "systemctl $*" >> {sandbox["calls"]}; exit 1')
    result = _run(_on_start(), sandbox)
    assert result.returncode == 0, result.stderr
    assert "installed (cron)" in result.stdout
    assert len(sandbox["crontab"].read_text().splitlines()) == 1


def test_on_start_installs_the_embedded_autostop_script_in_cron_once(sandbox):
    script = _on_start()
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


def test_on_start_says_in_the_log_when_auto_stop_could_not_be_installed(sandbox):
    (sandbox["bin"] / "crontab").unlink()  # no systemd (fixture), no cron, dnf fails
    result = _run(_on_start(), sandbox)
    assert result.returncode == 0  # the instance starts anyway
    assert "auto-stop NOT installed" in result.stderr
    assert "dnf install -y -q cronie" in sandbox["calls"].read_text()


def test_on_start_registers_the_sdk_kernel_once_installed(sandbox):
    result = _run(_on_start(), sandbox)
    assert "kernel secml (SageMaker SDK v3) not installed (yet)" in result.stderr
    venv_python = Path(sandbox["env"]["SECML_SDK_VENV"]) / "bin/python"
    venv_python.parent.mkdir(parents=True)
    _stub(venv_python.parent, "python", "exit 0")
    result = _run(_on_start(), sandbox)
    assert "kernel secml (SageMaker SDK v3) registered" in result.stdout
    kernel = Path(sandbox["env"]["SECML_KERNELS_DIR"]) / "secml-sdk-v3" / "kernel.json"
    assert json.loads(kernel.read_text())["argv"][0] == str(venv_python)


def _autostop():
    spec = importlib.util.spec_from_file_location("secml_autostop", LIFECYCLE_DIR / "autostop.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_autostop_stops_with_the_aws_cli_when_its_python_has_no_boto3(tmp_path, monkeypatch):
    log = tmp_path / "aws.log"
    _stub(tmp_path, "aws", f'echo "aws $*" >> {log}')
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 -> ImportError
    _autostop().stop_notebook_instance("secml-nb", "eu-west-1")
    assert log.read_text() == (
        "aws sagemaker stop-notebook-instance --region eu-west-1 "
        "--notebook-instance-name secml-nb\n"
    )


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
