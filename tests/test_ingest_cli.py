"""`python -m secml tuples ...`: the Lambdas' code on files, folders and S3, clear errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from lambda_src.staging import render, stage_function
from secml.cli import main
from tests.ingest_support import aws, ct_key, log_bytes, record

WORKSHOP = Path(__file__).resolve().parents[1] / "data" / "workshop"


def test_cloudtrail_folder_of_the_workshop_preset(tmp_path, capsys):
    out = tmp_path / "ct.csv"
    assert main(["tuples", "cloudtrail", str(WORKSHOP / "cloudtrail"), "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) > 30_000 and all(line.count(",") == 1 for line in lines)
    assert not any("amazonaws.com" in line or "AWS Internal" in line for line in lines)
    captured = capsys.readouterr()
    assert "digest-file 28" in captured.err and f"-> {out}" in captured.out
    assert not list(tmp_path.glob(".tuples-*"))  # the spool file was renamed into place


def test_guardduty_file_and_s3_source(monkeypatch, tmp_path):
    out = tmp_path / "gd.csv"
    assert (
        main(
            [
                "tuples",
                "guardduty",
                str(WORKSHOP / "guardduty" / "findings.json"),
                "--out",
                str(out),
                "--ipv4-only",
            ]
        )
        == 0
    )
    local = out.read_text()
    with aws(monkeypatch) as s3:
        s3.put_object(
            Bucket="data-bucket",
            Key="guardduty/findings.json",
            Body=(WORKSHOP / "guardduty" / "findings.json").read_bytes(),
        )
        s3_out = tmp_path / "gd-s3.csv"
        assert (
            main(
                [
                    "tuples",
                    "guardduty",
                    "s3://data-bucket/guardduty/",
                    "--out",
                    str(s3_out),
                    "--ipv4-only",
                ]
            )
            == 0
        )
    assert s3_out.read_text() == local and ":" not in local.replace(",", "")


def test_cloudtrail_s3_uri_matches_local(monkeypatch, tmp_path):
    logs = [log_bytes([record(f"AIDA{n}", f"198.51.100.{n}")]) for n in range(1, 4)]
    for n, blob in enumerate(logs):
        (tmp_path / f"{n}.json.gz").write_bytes(blob)
    assert main(["tuples", "cloudtrail", str(tmp_path), "--out", str(tmp_path / "a.csv")]) == 0
    with aws(monkeypatch) as s3:
        for n, blob in enumerate(logs):
            s3.put_object(Bucket="data-bucket", Key=ct_key(n), Body=blob)
        assert (
            main(
                [
                    "tuples",
                    "cloudtrail",
                    "s3://data-bucket/AWSLogs",
                    "--out",
                    str(tmp_path / "b.csv"),
                    "--json",
                ]
            )
            == 0
        )
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["tuples", "cloudtrail", "/no/such/dir", "--out", "x.csv"], "no such file or folder"),
        (["tuples", "guardduty", "s3://", "--out", "x.csv"], "not an S3 URI"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_missing_bucket_is_one_line(monkeypatch, tmp_path, capsys):
    with aws(monkeypatch):
        assert (
            main(
                [
                    "tuples",
                    "cloudtrail",
                    "s3://no-such-bucket-here/x",
                    "--out",
                    str(tmp_path / "o.csv"),
                ]
            )
            == 2
        )
    assert "NoSuchBucket" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists() and not list(tmp_path.iterdir())


def test_unreadable_everything_writes_nothing(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad.json.gz").write_bytes(gzip.compress(b"{")[:-4])
    out = tmp_path / "out.csv"
    assert main(["tuples", "cloudtrail", str(tmp_path / "in"), "--out", str(out)]) == 0
    assert not out.exists()


# ---- staging ---------------------------------------------------------------------------------


def test_staging_is_deterministic_and_complete(tmp_path):
    for name in ("cloudtrail_ingest", "guardduty_ingest"):
        for solutions in (False, True):
            a = stage_function(name, solutions=solutions, out_dir=tmp_path / "a")
            b = stage_function(name, solutions=solutions, out_dir=tmp_path / "b")
            assert a.name == f"{name}-{'solution' if solutions else 'exercise'}"
            files = sorted(p.name for p in a.iterdir())
            reader = (
                "cloudtrail_logs.py" if name.startswith("cloudtrail") else "guardduty_findings.py"
            )
            assert files == sorted(["index.py", "ingest_common.py", reader])
            for f in files:
                assert (a / f).read_bytes() == (b / f).read_bytes()
            text = (a / "index.py").read_text()
            assert "# EXERCISE" not in text and "# SOLUTION" not in text
            compile(text, str(a / "index.py"), "exec")


def test_render_markers():
    src = (
        "x = 1\n"
        "    a = f(1)  # EXERCISE\n"
        "    if a:  # EXERCISE\n"
        "        g(a)  # EXERCISE\n"
        "    short(x)  # EXERCISE: full(x)\n"
        "    return fast(x)  # SOLUTION\n"
        "\n"
    )
    assert render(src, solutions=True) == (
        "x = 1\n    a = f(1)\n    if a:\n        g(a)\n    short(x)\n    return fast(x)\n"
    )
    assert render(src, solutions=False) == (
        "x = 1\n    # a = f(1)\n    # if a:\n    #     g(a)\n    full(x)\n"
    )


def test_summary_is_json_serialisable(tmp_path, capsys):
    out = tmp_path / "o.csv"
    main(["tuples", "guardduty", str(WORKSHOP / "guardduty"), "--out", str(out), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert {"files_read", "records", "tuples_written", "skipped", "files_skipped", "output"} <= set(
        summary
    )


# ---- no input destroyed, no error after the work (issue 17) -----------------------------------


def one_line_error(capsys, *words: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert all(w in err for w in words), err
    return err


@pytest.mark.parametrize("kind", ["same", "symlink", "hardlink", "in-folder"])
def test_an_output_that_is_an_input_is_refused(tmp_path, capsys, kind):
    src = tmp_path / "logs"
    src.mkdir()
    log = src / "x.json.gz"
    log.write_bytes(log_bytes([record()]))
    before = log.read_bytes()
    out = {"same": log, "symlink": tmp_path / "link.csv", "hardlink": tmp_path / "hard.csv"}.get(
        kind, log
    )
    if kind == "symlink":
        out.symlink_to(log)
    elif kind == "hardlink":
        out.hardlink_to(log)
    source = str(src) if kind == "in-folder" else str(log)
    assert main(["tuples", "cloudtrail", source, "--out", str(out)]) == 2
    one_line_error(capsys, "is the input file", "would be overwritten")
    assert log.read_bytes() == before and sorted(p.name for p in src.iterdir()) == ["x.json.gz"]


def test_output_errors_come_before_the_work(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    source = str(WORKSHOP / "cloudtrail")
    assert main(["tuples", "cloudtrail", source, "--out", str(tmp_path / "file" / "o.csv")]) == 2
    one_line_error(capsys, "is not a folder")
    assert main(["tuples", "cloudtrail", source, "--out", "s3://bucket-only"]) == 2
    one_line_error(capsys, "s3://bucket/key")
    assert main(["tuples", "guardduty", source, "--out", "s3://b/prefix/"]) == 2
    one_line_error(capsys, "s3://bucket/key")


def test_an_unreadable_source_file_is_one_line_before_the_work(tmp_path, capsys, monkeypatch):
    """(As root nothing is unreadable by its mode, so the refusal is simulated at open.)"""
    locked = tmp_path / "locked.json.gz"
    locked.write_bytes(log_bytes([record()]))
    real_open = Path.open

    def refuse(self, *args, **kwargs):
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    out = tmp_path / "o.csv"
    assert main(["tuples", "cloudtrail", str(locked), "--out", str(out)]) == 2
    one_line_error(capsys, "cannot read", "Permission denied")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["locked.json.gz"]


def test_output_to_s3(monkeypatch, tmp_path, capsys):
    with aws(monkeypatch) as s3:
        for n in range(3):
            s3.put_object(Bucket="data-bucket", Key=ct_key(n), Body=log_bytes([record(f"AIDA{n}")]))
        uri = "s3://tuples-bucket/train/t.csv"
        assert main(["tuples", "cloudtrail", "s3://data-bucket/AWSLogs/", "--out", uri]) == 0
        body = s3.get_object(Bucket="tuples-bucket", Key="train/t.csv")["Body"].read()
        assert body.decode().splitlines() == [f"AIDA{n},203.0.113.10" for n in range(3)]
        assert f"-> {uri}" in capsys.readouterr().out
        # the output object is one of the inputs: refused, and left as it was
        existing = f"s3://data-bucket/{ct_key(1)}"
        assert main(["tuples", "cloudtrail", "s3://data-bucket/AWSLogs/", "--out", existing]) == 2
        one_line_error(capsys, "is one of the inputs")
        assert s3.get_object(Bucket="data-bucket", Key=ct_key(1))["Body"].read() == log_bytes(
            [record("AIDA1")]
        )
        assert main(["tuples", "cloudtrail", "s3://data-bucket/", "--out", "s3://nope/x"]) == 2
        one_line_error(capsys, "cannot use bucket nope")
    assert not Path("s3:").exists()


@pytest.mark.parametrize(
    "signum, written", [("SIGTERM", 0), ("SIGINT", 0), ("SIGTERM", 1), ("SIGINT", 1)]
)
def test_a_stopped_run_leaves_no_part_file(tmp_path, signum, written):
    """The run is frozen (SIGSTOP) once its spool file exists (and, with `written`, holds
    tuples: mid-run), then told to stop and thawed: it removes the spool file, and no output
    appears. The input is the workshop's logs copied eight times (about 4,800 files), so the
    run lasts seconds, not the fraction of one the workshop's logs take."""
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import time

    src = tmp_path / "src"
    for n in range(8):
        shutil.copytree(WORKSHOP / "cloudtrail", src / str(n))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "t.csv"
    proc = subprocess.Popen(
        [sys.executable, "-m", "secml", "tuples", "cloudtrail", str(src), "--out", str(out)],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "INGEST_WORKERS": "2"},
    )
    deadline = time.monotonic() + 60
    while proc.poll() is None:
        spools = list(out_dir.glob(".tuples-*.part"))
        if spools and spools[0].stat().st_size >= written:
            break
        assert time.monotonic() < deadline
        time.sleep(0.002)
    proc.send_signal(signal.SIGSTOP)
    assert proc.poll() is None and not out.exists(), "the run ended before it could be stopped"
    proc.send_signal(getattr(signal, signum))
    proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.decode().strip() == "secml tuples: interrupted"
    assert list(out_dir.iterdir()) == []


def test_a_progress_bar_on_a_terminal_for_many_files_only(tmp_path, capsys, monkeypatch):
    import secml.tuples

    source = str(WORKSHOP / "cloudtrail")
    assert main(["tuples", "cloudtrail", source, "--out", str(tmp_path / "a.csv")]) == 0
    assert "file/s" not in capsys.readouterr().err  # not a terminal: no bar
    monkeypatch.setattr(secml.tuples, "_is_terminal", lambda: True)
    assert main(["tuples", "cloudtrail", source, "--out", str(tmp_path / "b.csv")]) == 0
    err = capsys.readouterr().err
    assert "file/s" in err and "/634" in err  # every file of the workshop's logs, counted
    few = tmp_path / "few"
    few.mkdir()
    for n in range(5):
        (few / f"{n}.json.gz").write_bytes(log_bytes([record()]))
    assert main(["tuples", "cloudtrail", str(few), "--out", str(tmp_path / "c.csv")]) == 0
    assert "file/s" not in capsys.readouterr().err  # a few files: no bar
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    from lambda_src import ingest_common

    assert ingest_common.on_file is None


def test_the_cloudtrail_function_ships_msgspec_and_isal_built_for_its_runtime():
    """The deployed CloudTrail ingest carries its field reader and inflate as the pinned wheels
    for the Lambda runtime's Python on x86_64 (not this machine's); the GuardDuty one none."""
    from lambda_src.staging import pinned
    from stacks.functions import newest_python_runtime
    from stacks.ingest import function_code

    python = newest_python_runtime().name.removeprefix("python")
    tag = f"cpython-{python.replace('.', '')}-x86_64-linux-gnu.so"
    for solutions in (False, True):  # the exercise inflates with isal too
        folder = Path(function_code("cloudtrail_ingest", solutions=solutions).path)
        assert (folder / "msgspec" / f"_core.{tag}").is_file()
        assert (folder / "isal" / f"isal_zlib.{tag}").is_file()
        versions = sorted(p.name.removesuffix(".dist-info") for p in folder.glob("*.dist-info"))
        assert versions == sorted(p.replace("==", "-") for p in pinned(("msgspec", "isal")))
    guardduty = Path(function_code("guardduty_ingest", solutions=True).path)
    assert sorted(p.name for p in guardduty.iterdir()) == [
        "guardduty_findings.py",
        "index.py",
        "ingest_common.py",
    ]


def test_packages_pip_cannot_fetch_leave_the_stdlib_function_and_say_so(
    tmp_path, monkeypatch, capsys
):
    from lambda_src import staging

    monkeypatch.setattr(staging, "PACKAGES_DIR", tmp_path / "packages")
    monkeypatch.setattr(staging, "LAMBDA_PLATFORM", "no_such_platform")  # pip finds no wheel
    folder = stage_function(
        "cloudtrail_ingest", solutions=True, out_dir=tmp_path / "out", packages="3.14"
    )
    assert sorted(p.name for p in folder.iterdir()) == [
        "cloudtrail_logs.py",
        "index.py",
        "ingest_common.py",
    ]
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("warning: could not fetch msgspec==") and "stdlib" in line
    assert not list(tmp_path.glob("packages/*"))  # no half-built folder left


def test_a_staged_function_runs_on_its_vendored_packages_in_a_bare_interpreter(tmp_path):
    """Staged for this machine's Python, the CloudTrail function imports the vendored msgspec
    and isal from its own folder in an interpreter without site-packages (as the Lambda
    runtime does from /var/task), reads with them, and writes what the venv's run writes."""
    import os
    import subprocess
    import sys

    from lambda_src.cloudtrail_ingest import index
    from tests.test_ingest_cloudtrail import WORKSHOP

    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    folder = stage_function(
        "cloudtrail_ingest", solutions=True, out_dir=tmp_path / "fn", packages=python
    )
    script = (
        "import json, cloudtrail_logs as logs, ingest_common as common, index\n"
        "import msgspec, isal\n"
        "assert msgspec.__file__.startswith({!r}) and isal.__file__.startswith({!r})\n"
        "assert logs.FIELD_READER is not None and common.igzip is not None\n"
        "event = {{'sources': [{!r}], 'output': {!r}, 'print_limit': 0}}\n"
        "print(json.dumps(index.handler(event, None)))\n"
    ).format(str(folder), str(folder), str(WORKSHOP), str(tmp_path / "bare.csv"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    done = subprocess.run(
        [sys._base_executable, "-S", "-c", script],
        cwd=folder,
        env={**env, "INGEST_WORKERS": "1"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    bare = json.loads(done.stdout.strip().splitlines()[-1])
    event = {"sources": [str(WORKSHOP)], "output": str(tmp_path / "venv.csv"), "print_limit": 0}
    here = index.handler(event, None)
    assert bare.pop("json_backend") == "stdlib"  # no orjson there: msgspec reads every file
    here.pop("json_backend")
    assert {**bare, "output": None} == {**here, "output": None}
    assert (tmp_path / "bare.csv").read_bytes() == (tmp_path / "venv.csv").read_bytes()
