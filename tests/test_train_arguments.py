"""`train`: arguments checked before the data is read; memory and outputs (issue 17)."""

import pytest

from secml.cli import main
from secml.ipinsights import hyperparameters, model

ROWS = "".join(f"user{i % 5},10.0.{i % 3}.{i}\n" for i in range(60))


@pytest.fixture
def train_csv(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text(ROWS)
    return path


@pytest.fixture
def no_data_read(monkeypatch):
    """Fail the test if the command reaches the (slow) data loading."""

    def boom(*args, **kwargs):
        raise AssertionError("the data was read before the arguments were checked")

    monkeypatch.setattr("secml.ipinsights.data.load_pairs", boom)


def _one_line(capsys, *needles):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("secml train: error: "), err
    for needle in needles:
        assert needle in err, err
    return err


def test_model_dir_under_a_file_is_refused_before_reading(train_csv, capsys, no_data_read):
    args = ["train", "--train", str(train_csv), "--model-dir", str(train_csv / "model")]
    assert main(args) == 2
    _one_line(capsys, "is a file")


def test_model_dir_holding_the_training_file_is_refused(train_csv, capsys, no_data_read):
    assert main(["train", "--train", str(train_csv), "--model-dir", str(train_csv.parent)]) == 2
    _one_line(capsys, "also an input")
    assert train_csv.read_text() == ROWS


def test_model_dir_that_is_a_folder_of_other_things_is_refused(train_csv, tmp_path, capsys):
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"\xff\xd8")
    assert main(["train", "--train", str(train_csv), "--model-dir", str(other)]) == 2
    _one_line(capsys, "not a saved model")
    assert (other / "cat.jpg").exists()


def test_bad_hp_is_refused_before_reading(train_csv, tmp_path, capsys, no_data_read):
    args = ["train", "--train", str(train_csv), "--model-dir", str(tmp_path / "m")]
    assert main([*args, "--hp", "epochs=0"]) == 2
    _one_line(capsys, "epochs")


def test_tables_that_do_not_fit_are_one_line_with_the_memory_needed(
    train_csv, tmp_path, capsys, monkeypatch, no_data_read
):
    monkeypatch.setattr(hyperparameters, "available_memory_bytes", lambda: 8 * 10**9)
    args = ["train", "--train", str(train_csv), "--model-dir", str(tmp_path / "m")]
    hp = ["--hp", "num_entity_vectors=250000000", "--hp", "vector_dim=4096"]
    assert main([*args, *hp]) == 2
    # 250e6 x 4096 floats x (weights + 2 Adam moments) x 4 bytes, plus one 4096x4096 layer
    _one_line(capsys, "12.3 TB", "8.0 GB available")


def test_an_allocation_failure_during_training_is_one_line(
    train_csv, tmp_path, capsys, monkeypatch
):
    def fit(self, *args, **kwargs):
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate"
        )

    monkeypatch.setattr(model.IPInsights, "fit", fit)
    args = ["train", "--train", str(train_csv), "--model-dir", str(tmp_path / "m")]
    assert main(args) == 2
    _one_line(capsys, "out of memory", "need about")
    assert not (tmp_path / "m").exists()


def test_encoder_layers_alone_can_be_too_big(
    train_csv, tmp_path, capsys, monkeypatch, no_data_read
):
    monkeypatch.setattr(hyperparameters, "available_memory_bytes", lambda: 8 * 10**9)
    args = ["train", "--train", str(train_csv), "--model-dir", str(tmp_path / "m")]
    hp = ["--hp", "vector_dim=4096", "--hp", "num_ip_encoder_layers=100"]
    assert main([*args, *hp]) == 2
    _one_line(capsys, "20.1 GB", "num_ip_encoder_layers=100")


def test_a_huge_hp_value_is_quoted_short(train_csv, tmp_path, capsys, no_data_read):
    args = ["train", "--train", str(train_csv), "--model-dir", str(tmp_path / "m")]
    assert main([*args, "--hp", "vector_dim=" + "x" * 20_000]) == 2
    err = _one_line(capsys, "vector_dim=")
    assert len(err) < 300
