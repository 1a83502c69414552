import json
import subprocess
import sys

import pytest

from secml.cli import main
from secml.ipinsights.synthetic import tutorial_logins


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data = tutorial_logins(num_users=60, num_isps=10, num_companies=40, seed=2)
    data.train_frame().to_csv(root / "train.csv", header=False, index=False)
    data.test_frame().head(30).to_csv(root / "test.csv", header=False, index=False)
    return root


def train_small_model(files):
    model_dir = files / "model"
    return model_dir, main(
        [
            "train",
            "--train",
            str(files / "train.csv"),
            "--validation",
            str(files / "test.csv"),
            "--model-dir",
            str(model_dir),
            "--hp",
            "epochs=1",
            "--hp",
            "vector_dim=8",
            "--hp",
            "mini_batch_size=500",
            "--device",
            "cpu",
        ]
    )


def test_train_then_score_a_file(files, capsys):
    model_dir, rc = train_small_model(files)
    assert rc == 0
    assert "validation:discriminator_auc" in capsys.readouterr().err
    hp = json.loads((model_dir / "hyperparameters.json").read_text())
    assert hp["vector_dim"] == 8 and hp["num_entity_vectors"] == 2 * 60
    assert main(["score", "--model-dir", str(model_dir), str(files / "test.csv")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 30
    assert all(list(json.loads(line)) == ["dot_product"] for line in lines)


def test_score_from_stdin_verbose_and_skip_invalid(files, tmp_path):
    model_dir = files / "model"
    if not model_dir.exists():  # run on its own (or first under xdist): train it here
        assert train_small_model(files)[1] == 0
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "secml",
            "score",
            "--model-dir",
            str(model_dir),
            "--verbose",
            "--skip-invalid",
        ],
        input="user_000001,10.0.0.1\nbad,999.1.1.1\nuser_000002,2001:db8::1\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(rows) == 2 and {"entity_embedding", "ip_embedding"} <= set(rows[0])
    assert "skipped 1 invalid rows" in run.stderr and "stdin line 2" in run.stderr


def test_user_errors_are_one_line_and_exit_2(files, capsys):
    bad = files / "bad.csv"
    bad.write_text("a,1.2.3.4\nb,1.2.3.4.5\n")
    assert main(["train", "--train", str(bad), "--model-dir", str(files / "x")]) == 2
    err = capsys.readouterr().err
    assert "line 2" in err and "--skip-invalid" in err and "Traceback" not in err
    rc = main(
        [
            "train",
            "--train",
            str(files / "train.csv"),
            "--model-dir",
            str(files / "x"),
            "--hp",
            "epochs=0",
        ]
    )
    assert rc == 2 and "epochs" in capsys.readouterr().err
    assert main(["score", "--model-dir", str(files / "nowhere"), str(files / "test.csv")]) == 2
    assert "not a trained model directory" in capsys.readouterr().err


def test_help_does_not_import_torch():
    code = (
        "import sys; from secml.cli import build_parser; build_parser(); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
