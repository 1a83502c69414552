"""How training entities are assigned to the num_entity_vectors rows (``entity_rows``).

See secml/ipinsights/model.py (IPInsights docstring) and docs/ipinsights-engine.md.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from secml.errors import SecmlError
from secml.ipinsights import IPInsights
from secml.ipinsights.addresses import parse_addresses
from secml.ipinsights.data import entity_hashes

SMALL = dict(vector_dim=16, epochs=2, mini_batch_size=64)
USERS = [f"user{i}" for i in range(12)]
PAIRS = [(USERS[i % 12], f"10.{i % 12}.{i % 5}.{i % 250}") for i in range(600)]


def _hashes(entities):
    return entity_hashes(np.array(entities, dtype=object))


def _colliding_pair(n: int) -> tuple[str, str]:
    """Two entity names whose hashes land on the same row modulo n."""
    seen: dict[int, str] = {}
    for i in range(10_000):
        name = f"collide{i}"
        row = int(_hashes([name])[0] % np.uint64(n))
        if row in seen:
            return seen[row], name
        seen[row] = name
    raise AssertionError("no collision found")


def test_table_gives_each_training_entity_its_own_row_by_hash_rank():
    model = IPInsights(**SMALL, num_entity_vectors=24, seed=0)
    assert model.entity_rows == "table"  # the default
    model.fit(PAIRS, progress=False)
    rows = model._entity_rows(_hashes(USERS))
    assert sorted(rows.tolist()) == list(range(12))  # distinct, the first 12 rows
    order = np.argsort(_hashes(USERS))
    assert np.array_equal(rows[order], np.arange(12))  # rank among the sorted hashes


def test_hash_is_the_builtins_hash_modulo_and_table_falls_back_to_it_when_rows_are_short():
    hashed = IPInsights(**SMALL, num_entity_vectors=24, seed=0, entity_rows="hash")
    hashed.fit(PAIRS, progress=False)
    expect = (_hashes(USERS) % np.uint64(24)).astype(np.int64)
    assert np.array_equal(hashed._entity_rows(_hashes(USERS)), expect)
    short = IPInsights(**SMALL, num_entity_vectors=8, seed=0)  # 12 entities, 8 rows
    short.fit(PAIRS, progress=False)
    expect = (_hashes(USERS) % np.uint64(8)).astype(np.int64)
    assert np.array_equal(short._entity_rows(_hashes(USERS)), expect)


def test_colliding_entities_share_a_vector_with_hash_but_not_with_table():
    a, b = _colliding_pair(64)
    pairs = [(a, f"10.1.0.{i}") for i in range(100)] + [(b, f"172.16.0.{i}") for i in range(100)]
    scores = {}
    for how in ("hash", "table"):
        model = IPInsights(**SMALL, num_entity_vectors=64, seed=1, entity_rows=how)
        model.fit(pairs, progress=False)
        rows = model._entity_rows(_hashes([a, b]))
        assert (rows[0] == rows[1]) == (how == "hash")
        scores[how] = model.score([a, a, b, b], ["10.1.0.7", "172.16.0.7"] * 2)
    # with its own row, each entity prefers its own network; a shared row cannot tell them apart
    s = scores["table"]
    assert s[0] > s[1] and s[3] > s[2]
    assert np.isclose(scores["hash"][0], scores["hash"][2], atol=1e-5)


def test_unknown_entities_still_get_the_population_vector():
    model = IPInsights(**SMALL, num_entity_vectors=24, seed=0)
    model.fit(PAIRS, progress=False)
    ips = ["10.3.1.1", "10.7.2.9"]
    score = model.score(["stranger", "stranger"], ips)
    addresses, _ = parse_addresses(np.array(ips, dtype=object))
    with torch.no_grad():
        h = model.net.encode_ips(torch.from_numpy(model.indexer.rows(addresses)))
        expect = (h * model.net.population).sum(1).numpy()
    assert np.allclose(score, expect, atol=1e-5)
    assert not model.known_entities(["stranger"])[0]


def test_saved_and_loaded_and_old_models_keep_the_hash(tmp_path):
    model = IPInsights(**SMALL, num_entity_vectors=24, seed=0)
    model.fit(PAIRS, progress=False)
    model.save(tmp_path / "m")
    engine = json.loads((tmp_path / "m" / "engine.json").read_text())
    assert engine["entity_rows"] == "table"
    assert "entity_rows" not in json.loads((tmp_path / "m" / "hyperparameters.json").read_text())
    loaded = IPInsights.load(tmp_path / "m")
    ips = [ip for _, ip in PAIRS[:24]]
    ents = [e for e, _ in PAIRS[:24]]
    assert loaded.entity_rows == "table"
    assert np.array_equal(loaded.score(ents, ips), model.score(ents, ips))
    # a model saved before the setting existed was trained with the hash assignment
    del engine["entity_rows"]
    (tmp_path / "m" / "engine.json").write_text(json.dumps(engine))
    assert IPInsights.load(tmp_path / "m").entity_rows == "hash"


def test_bad_value_is_refused():
    with pytest.raises(SecmlError, match="entity_rows 'perfect'"):
        IPInsights(**SMALL, num_entity_vectors=24, entity_rows="perfect")
