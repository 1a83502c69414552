"""`secml score` without torch (secml/ipinsights/scorer.py): the numpy scorer reads weights.npz
and gives the torch engine's scores; models saved before weights.npz still score."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from secml.cli import main
from secml.errors import SecmlError
from secml.ipinsights import IPInsights
from secml.ipinsights.addresses import parse_distinct_addresses
from secml.ipinsights.data import load_pairs
from secml.ipinsights.scorer import Scorer, load_for_scoring
from secml.ipinsights.scoring import factorize_texts

PAIRS = [(f"user{i % 12}", f"10.{i % 12}.{i % 5}.{i % 250}") for i in range(600)] + [
    ("user6", "2001:db8::6"),
    ("user7", "2001:db8:7::1"),
]
rng = np.random.default_rng(0)
# users 12-14 unseen; few addresses shared by many users, then one address per pair
ENTITIES = [f"user{int(i)}" for i in rng.integers(0, 15, 3000)]
IPS = [f"10.{int(a)}.{int(b)}.{int(c)}" for a, b, c in rng.integers(0, 4, (1500, 3))] + [
    f"10.{i % 14}.{i % 200}.{i % 251}" for i in range(1500)
]
IPS[:3] = ["2001:db8::6", "2001:db8:7::1", "::ffff:10.1.1.1"]


def _numpy_scores(scorer, entities, ips):
    ent_codes, ent_uniq = factorize_texts(entities)
    ip_codes, ip_uniq = factorize_texts(ips)
    addresses, ok = parse_distinct_addresses(ip_uniq)
    assert ok.all()
    return scorer.score_distinct(ent_uniq, ent_codes, addresses, ip_codes)


@pytest.fixture(
    scope="module",
    params=[
        ("prefix", 1, "table"),
        ("prefix", 0, "table"),
        ("prefix", 2, "hash"),
        ("hashed", 1, "table"),
        ("octet", 2, "table"),
    ],
    ids=lambda p: f"{p[0]}-{p[1]}-layers-{p[2]}",
)
def saved(request, tmp_path_factory):
    encoder, layers, entity_rows = request.param
    model = IPInsights(
        num_entity_vectors=64,
        vector_dim=16,
        epochs=1,
        mini_batch_size=64,
        num_ip_encoder_layers=layers,
        ip_encoder=encoder,
        entity_rows=entity_rows,
        seed=3,
    )
    model.fit(PAIRS, progress=False)
    return model, model.save(tmp_path_factory.mktemp("scorer") / "m")


def test_numpy_scores_equal_the_torch_engine(saved):
    model, path = saved
    scorer = Scorer.load(path)
    want = model.score(ENTITIES, IPS)
    got = _numpy_scores(scorer, ENTITIES, IPS)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # addresses encoded once each (many pairs per address) and once per pair
    few = _numpy_scores(scorer, ENTITIES[:1500], IPS[:1500])
    many = _numpy_scores(scorer, ENTITIES[1500:], IPS[1500:])
    np.testing.assert_allclose(np.r_[few, many], want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(scorer.score(ENTITIES, IPS), want, rtol=1e-5, atol=1e-5)
    with pytest.raises(SecmlError, match=r"row 2: '1\.2\.3' is not an IPv4"):
        scorer.score(["a", "b"], ["1.1.1.1", "1.2.3"])


def test_verbose_embeddings_equal_the_torch_engine(saved):
    model, path = saved
    pairs = load_pairs(list(zip(ENTITIES[:300], IPS[:300], strict=True)))
    want = model.predict_pairs(pairs, verbose=True)["predictions"]
    got = Scorer.load(path).predict_pairs(pairs, verbose=True)["predictions"]
    assert [p["known_entity"] for p in got] == [p["known_entity"] for p in want]
    for key in ("dot_product", "entity_embedding", "ip_embedding"):
        np.testing.assert_allclose(
            [p[key] for p in got], [p[key] for p in want], rtol=1e-5, atol=1e-5
        )


def test_secml_score_does_not_import_torch(saved, tmp_path):
    """Nor does it start OpenBLAS threads: they only spin between its small products."""
    model, path = saved
    (tmp_path / "in.csv").write_text(
        "".join(f"{e},{ip}\n" for e, ip in zip(ENTITIES, IPS, strict=True))
    )
    code = (
        "import sys; from secml.cli import main; "
        f"rc = main(['score', '--model-dir', {str(path)!r}, {str(tmp_path / 'in.csv')!r}]); "
        "sys.stdout.flush(); import threadpoolctl; "
        "blas = {p['num_threads'] for p in threadpoolctl.threadpool_info() "
        "if p['internal_api'] == 'openblas'}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'), blas,"
        " file=sys.stderr); sys.exit(rc)"
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr.strip() in ("[] {1}", "[] set()")  # set(): a numpy without OpenBLAS
    got = [json.loads(line)["dot_product"] for line in run.stdout.splitlines()]
    np.testing.assert_allclose(got, model.score(ENTITIES, IPS), rtol=1e-5, atol=1e-5)


def test_a_model_saved_before_weights_npz_still_scores(saved, tmp_path, capsys):
    """Older models kept their weights in model.pt only: `secml score` takes the torch path."""
    import shutil

    import torch

    model, path = saved
    old = tmp_path / "old"
    shutil.copytree(path, old)
    (old / "weights.npz").unlink()
    torch.save({k: v.detach().cpu() for k, v in model.net.state_dict().items()}, old / "model.pt")
    assert isinstance(load_for_scoring(old), IPInsights)
    (tmp_path / "in.csv").write_text("user1,10.1.1.1\nuser13,2001:db8::6\n")
    assert main(["score", "--model-dir", str(old), str(tmp_path / "in.csv")]) == 0
    got = [json.loads(line)["dot_product"] for line in capsys.readouterr().out.splitlines()]
    want = model.score(["user1", "user13"], ["10.1.1.1", "2001:db8::6"])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_device_choice_of_secml_score(saved):
    _, path = saved
    assert isinstance(load_for_scoring(path), Scorer)
    assert isinstance(load_for_scoring(path, device="auto"), Scorer)
    if not __import__("torch").cuda.is_available():  # cuda: the torch engine, which says why
        with pytest.raises(SecmlError, match="no CUDA GPU"):
            load_for_scoring(path, device="cuda")
    else:
        assert isinstance(load_for_scoring(path, device="cuda"), IPInsights)
