"""No traceback reaches a user from any `python -m secml` command (issue 17, "Done means").

Each command gets a few broken inputs and must answer with exactly one line on stderr,
``secml CMD: error: ...``, and exit code 2, before doing any slow work. In-process through
``secml.cli.main`` (fast); a few through a real subprocess at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from secml.cli import main

ROOT = Path(__file__).resolve().parents[1]
TRAIN = "".join(f"user{i % 5},10.0.{i % 3}.{i}\n" for i in range(80))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Files the broken inputs point at: a good CSV, a small trained model, odd files."""
    d = tmp_path_factory.mktemp("bad")
    (d / "train.csv").write_text(TRAIN)
    (d / "file.txt").write_text("a file\n")
    (d / "cp1252.csv").write_bytes("Zoë,10.0.0.1\n".encode("cp1252"))
    (d / "allbad.csv").write_text("a,not-an-ip\nb,1.2.3\n")
    (d / "quote.csv").write_text('"a,10.0.0.1\n')
    (d / "nonempty").mkdir()
    (d / "nonempty" / "x").write_text("x")
    (d / "emptydir").mkdir()
    (d / "roster.csv").write_text("111111111111,eu-west-1\n")
    (d / "roster1252.csv").write_bytes("111111111111,eu-west-1,Zoë\n".encode("cp1252"))
    (d / "state.json").write_text("{not json")
    model = d / "model"
    hp = ["--hp", "num_entity_vectors=10", "--hp", "vector_dim=4", "--hp", "epochs=1"]
    assert main(["train", "--train", str(d / "train.csv"), "--model-dir", str(model), *hp]) == 0
    partial = d / "partial-model"
    partial.mkdir()
    (partial / "engine.json").write_text((model / "engine.json").read_text())
    return d


def cases(d: Path) -> list[list[str]]:
    f, m = str(d / "file.txt"), str(d / "model")
    return [
        # generate
        ["generate", "--out", f],
        ["generate", "--out", f"{f}/sub"],
        ["generate", "--out", str(d / "nonempty")],
        ["generate", "--out", str(d / "x"), "--seed", "-1"],
        # tuples
        ["tuples", "cloudtrail", str(d / "missing.json.gz"), "--out", str(d / "t.csv")],
        ["tuples", "guardduty", str(d / "missing.json"), "--out", str(d / "emptydir")],
        # train
        ["train", "--train", str(d / "missing.csv"), "--model-dir", str(d / "m1")],
        ["train", "--train", str(d / "emptydir"), "--model-dir", str(d / "m1")],
        ["train", "--train", str(d / "cp1252.csv"), "--model-dir", str(d / "m1")],
        ["train", "--train", str(d / "quote.csv"), "--model-dir", str(d / "m1")],
        ["train", "--train", str(d / "train.csv"), "--model-dir", str(d / "m1"), "--hp", "x=1"],
        ["train", "--train", str(d / "train.csv"), "--model-dir", str(d / "m1"), "--hp", "epochs"],
        ["train", "--train", str(d / "train.csv"), "--model-dir", f"{f}/m"],
        ["train", "--train", str(d / "train.csv"), "--model-dir", str(d / "nonempty")],
        # score
        ["score", "--model-dir", str(d / "missing"), str(d / "train.csv")],
        ["score", "--model-dir", f, str(d / "train.csv")],
        ["score", "--model-dir", str(d / "partial-model"), str(d / "train.csv")],
        ["score", "--model-dir", m, str(d / "missing.csv")],
        ["score", "--model-dir", m, str(d / "allbad.csv")],
        ["score", "--model-dir", m, str(d / "cp1252.csv")],
        # demo: all refused before the synth, the S3 server and the training
        ["demo", "--out", f],
        ["demo", "--threshold-percentile", "150"],
        ["demo", "--threshold-percentile", "nan"],
        ["demo", "--dataset", str(d / "missing")],
        ["demo", "--vector-dim", "2"],
        ["demo", "--port", "70000"],
        # fleet
        ["fleet", "package", "--out", f],
        ["fleet", "package", "--out", str(d / "nonempty")],
        ["fleet", "provision", "--roster", str(d / "missing.csv")],
        ["fleet", "provision", "--roster", str(d / "roster1252.csv"), "--template", m],
        ["fleet", "provision", "--roster", str(d / "roster.csv"), "--template", str(d / "nope")],
        ["fleet", "provision", "--roster", str(d / "roster.csv"), "--report", str(d / "emptydir")],
        ["fleet", "status", "--state", str(d / "state.json")],
        ["fleet", "status", "--state", str(d / "missing.json")],
        ["fleet", "teardown", "--state", str(d / "state.json")],
        ["fleet", "stackset", "--template", str(d / "nope"), "--region", "eu-west-1"],
        ["fleet", "preflight", "--roster", str(d / "roster1252.csv")],
        ["fleet", "preflight", "--roster", str(d / "missing.csv")],
    ]


def test_every_command_answers_broken_input_with_one_line_and_exit_2(world, capsys, monkeypatch):
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    failures = []
    for argv in cases(world):
        try:
            code = main(argv)
        except BaseException as exc:  # what would be a traceback from `python -m secml`
            code = f"{type(exc).__name__}: {exc}"
        err = capsys.readouterr().err
        name = argv[0] if argv[0] != "fleet" else f"fleet {argv[1]}"
        ok = code == 2 and err.count("\n") == 1 and err.startswith(f"secml {name}: error: ")
        if not ok:
            failures.append(f"{argv}: exit {code}, stderr {err[-300:]!r}")
    assert not failures, "\n".join(failures)


def test_verify_clean_without_credentials_is_one_line(monkeypatch, tmp_path, capsys):
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert main(["verify-clean"]) == 2
    assert capsys.readouterr().err.startswith("secml verify-clean: error: no AWS region")
    for stack in ("", "-x", "a b", "x" * 129):
        assert main(["verify-clean", "--region", "eu-west-1", f"--stack={stack}"]) == 2
        assert "is not a CloudFormation stack name" in capsys.readouterr().err
    assert main(["verify-clean", "--region", "eu-west-1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no AWS credentials" in err


@pytest.mark.parametrize(
    ("argv", "setup"),
    [
        (["train", "--train", "t.csv", "--model-dir", "t.csv/m"], {"t.csv": TRAIN}),
        (["fleet", "status"], {"fleet-state.json": '["wrong", "shape"]'}),
        (["score", "--model-dir", "m"], {"m/engine.json": json.dumps({"format": 1})}),
    ],
)
def test_as_a_real_process(tmp_path, argv, setup):
    for name, content in setup.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SECML_DEBUG", None)
    done = subprocess.run(
        [sys.executable, "-m", "secml", *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
