"""`secml demo` end to end on a reduced workshop dataset, and its common failures.

The heavy tests run the CLI in-process (``main([...])``) so the jsii runtime behind the CDK synth
starts once for the module; the exit-code contract is checked separately in a subprocess.
"""

from __future__ import annotations

import csv
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from secml.cli import main
from secml.demo.s3server import port_is_open
from tests.conftest import ROOT
from tests.demo_support import FAST, WORKSHOP, reduced_workshop_dataset


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def reduced_dataset(tmp_path_factory) -> Path:
    return reduced_workshop_dataset(tmp_path_factory.mktemp("dataset"))


@pytest.fixture(scope="module")
def demo_run(reduced_dataset, tmp_path_factory):
    import contextlib
    import io

    out = tmp_path_factory.mktemp("demo-output")
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["demo", "--dataset", str(reduced_dataset), "--out", str(out), *FAST])
    return code, stdout.getvalue(), stderr.getvalue(), out


def truth_rows() -> list[dict[str, str]]:
    with (WORKSHOP / "truth.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_demo_exits_zero_and_prints_each_step_and_the_verdict(demo_run):
    code, out, err, _ = demo_run
    assert code == 0, err
    steps = ("Synthesize the CDK app", "upload dataset", "ingest Lambdas", "Train IP Insights")
    for step in (*steps, "Same tuples from the Athena SQL (DuckDB)", "equal to the Lambda's"):
        assert step in out
    assert "CloudTrailIngest" in out and "GuardDutyIngest" in out
    assert re.search(r"scored attacker findings rank above (all|every benign)", out)
    assert "Traceback" not in err


def test_report_is_self_contained_and_has_the_verdict_table_and_timings(demo_run):
    _, _, _, out = demo_run
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html
    assert not re.search(r"""(src|href)=['"]?https?:""", html), "report fetches something"
    assert "class='verdict" in html
    for section in ("Ranked findings", "Score distributions", "Step timings", "Ingest Lambdas"):
        assert section in html
    for row in truth_rows():
        assert row["finding_id"] in html
    assert (out / "score_histogram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_lists_what_the_buckets_hold(demo_run):
    _, _, _, out = demo_run
    html = (out / "report.html").read_text()
    assert "train/cloudtrail_tuples.csv" in html
    assert "infer/guardduty_tuples.csv" in html
    assert "guardduty/findings.json" in html and "truth.csv" in html
    assert re.search(r"cloudtrail/AWSLogs/\d+/CloudTrail/", html)


def test_scores_csv_ranks_every_finding_with_its_truth_label(demo_run):
    _, _, _, out = demo_run
    with (out / "scores.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    truth = {r["finding_id"]: r for r in truth_rows()}
    assert sorted(r["finding_id"] for r in rows) == sorted(truth)
    assert all(r["label"] == truth[r["finding_id"]]["label"] for r in rows)
    scores = [float(r["score"]) for r in rows if r["score"]]
    assert scores == sorted(scores), "most suspicious (lowest score) first"
    assert [int(r["rank"]) for r in rows] == list(range(1, len(rows) + 1))


def test_missing_dataset_is_one_clear_line(tmp_path, capsys):
    code = main(["demo", "--dataset", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("secml demo: error: dataset folder") and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_port_in_use_is_one_clear_line(tmp_path, reduced_dataset, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["demo", "--dataset", str(reduced_dataset), "--port", str(port), *FAST])
    err = capsys.readouterr().err
    assert code == 2
    assert f"port {port} on 127.0.0.1 is not available" in err and err.count("\n") == 1


def test_server_is_stopped_when_a_step_fails(tmp_path, reduced_dataset, capsys):
    """No CloudTrail logs: the run fails after S3 started; the port must be closed after."""
    broken = tmp_path / "no-logs"
    shutil.copytree(reduced_dataset, broken)
    shutil.rmtree(broken / "cloudtrail")
    (broken / "cloudtrail").mkdir()
    port = free_port()
    code = main(["demo", "--dataset", str(broken), "--port", str(port), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "CloudTrailIngest wrote no tuples" in err and "Traceback" not in err
    assert not port_is_open("127.0.0.1", port)


def test_cli_exit_code_and_no_traceback_in_a_real_process(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "secml", "demo", "--dataset", str(tmp_path / "missing")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "dataset folder" in proc.stderr
