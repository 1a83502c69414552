"""A saved model is whole or absent; a broken one is one line naming the file (issue 17)."""

import json
import os

import numpy as np
import pytest

from secml.errors import SecmlError
from secml.ipinsights import IPInsights
from secml.ipinsights.scorer import Scorer

SMALL = dict(num_entity_vectors=16, vector_dim=8, epochs=1, mini_batch_size=64)
PAIRS = [(f"user{i % 6}", f"10.{i % 6}.{i % 5}.{i % 250}") for i in range(200)]


@pytest.fixture(scope="module")
def model():
    m = IPInsights(**SMALL, seed=1)
    m.fit(PAIRS, progress=False)
    return m


@pytest.fixture
def saved(model, tmp_path):
    return model.save(tmp_path / "m")


def _edit_json(file, **changes):
    file.write_text(json.dumps({**json.loads(file.read_text()), **changes}))


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_interrupted_retrain_leaves_the_previous_model_whole(model, saved, monkeypatch):
    before = _files(saved)
    other = IPInsights(**{**SMALL, "vector_dim": 12}, seed=2)
    other.fit(PAIRS, progress=False)

    def stop(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C between two files of the new model

    monkeypatch.setattr(np, "savez", stop)
    with pytest.raises(KeyboardInterrupt):
        other.save(saved)
    assert _files(saved) == before
    assert sorted(os.listdir(saved.parent)) == ["m"]  # no temporary sibling left behind
    assert IPInsights.load(saved).hyperparameters["vector_dim"] == 8


def test_retrain_replaces_every_file(model, saved):
    (saved / "stale.txt").write_text("from an older engine")
    other = IPInsights(**{**SMALL, "vector_dim": 12}, seed=2)
    other.fit(PAIRS, progress=False)
    other.save(saved)
    assert "stale.txt" not in os.listdir(saved)
    assert IPInsights.load(saved).hyperparameters["vector_dim"] == 12


def test_save_refuses_a_folder_that_is_not_a_model(model, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SecmlError, match="not a saved model"):
        model.save(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    with pytest.raises(SecmlError, match="is a file"):
        model.save(tmp_path / "notes.txt" / "model")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "weights.npz").unlink(), r"weights\.npz: missing"),
        (lambda d: (d / "engine.json").unlink(), r"engine\.json: missing"),
        (lambda d: (d / "engine.json").write_text("{trunc"), r"engine\.json: not valid JSON"),
        (lambda d: (d / "hyperparameters.json").write_text("[1, 2]"), "expected a JSON object"),
        (lambda d: _edit_json(d / "hyperparameters.json", vector_dim=-1), "vector_dim=-1"),
        (lambda d: _edit_json(d / "engine.json", ip_encoder="zip"), "ip_encoder 'zip'"),
        (
            lambda d: (d / "weights.npz").write_bytes((d / "weights.npz").read_bytes()[:100]),
            r"weights\.npz: not a readable numpy archive",
        ),
        (
            lambda d: np.savez(d / "weights.npz", entity=np.zeros((16, 8), np.float32)),
            r"weights\.npz: not the weights of this model",
        ),
        (
            lambda d: (d / "encoder.npz").write_bytes((d / "encoder.npz").read_bytes()[:50]),
            r"encoder\.npz",
        ),
        (lambda d: (d / "engine.json").write_text('{"format": 99}'), "format 99"),
    ],
)
@pytest.mark.parametrize("load", [IPInsights.load, Scorer.load], ids=["torch", "numpy"])
def test_broken_model_directory_is_one_line_naming_the_file(saved, damage, message, load):
    damage(saved)
    with pytest.raises(SecmlError, match=message) as caught:
        load(saved)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("load", [IPInsights.load, Scorer.load], ids=["torch", "numpy"])
def test_weights_of_another_model_are_refused(model, saved, tmp_path, load):
    other = IPInsights(**{**SMALL, "vector_dim": 12}, seed=2)
    other.fit(PAIRS, progress=False)
    other.save(tmp_path / "other")
    (saved / "weights.npz").write_bytes((tmp_path / "other" / "weights.npz").read_bytes())
    with pytest.raises(SecmlError, match=r"weights\.npz: not the weights of this model"):
        load(saved)


def test_broken_weights_of_a_model_saved_before_weights_npz(model, saved):
    """model.pt, as models were saved before weights.npz: still read, and checked."""
    import torch

    (saved / "weights.npz").unlink()
    torch.save({k: v.detach() for k, v in model.net.state_dict().items()}, saved / "model.pt")
    assert IPInsights.load(saved).score(["user1"], ["10.1.1.1"]).tolist() == pytest.approx(
        model.score(["user1"], ["10.1.1.1"]).tolist()
    )
    (saved / "model.pt").write_bytes((saved / "model.pt").read_bytes()[:100])
    with pytest.raises(SecmlError, match=r"model\.pt: not the weights of this model"):
        IPInsights.load(saved)


@pytest.mark.parametrize("load", [IPInsights.load, Scorer.load], ids=["torch", "numpy"])
def test_load_of_a_missing_folder_or_a_file(tmp_path, load):
    with pytest.raises(SecmlError, match="no such folder"):
        load(tmp_path / "nope")
    (tmp_path / "f").write_text("x")
    with pytest.raises(SecmlError, match="not a folder"):
        load(tmp_path / "f")
