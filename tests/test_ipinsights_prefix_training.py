"""Prefix dropout and per-level learning rates: the engine settings that train coarse prefixes.

See secml/ipinsights/trainer.py (module docstring) and docs/ipinsights-engine.md.
"""

import json

import numpy as np
import pytest
import torch

from secml.errors import SecmlError
from secml.ipinsights import IPInsights
from secml.ipinsights.addresses import NUM_SLOTS, parse_addresses
from secml.ipinsights.data import entity_hashes, load_pairs
from secml.ipinsights.encoder import AddressIndexer
from secml.ipinsights.hyperparameters import validate_hyperparameters
from secml.ipinsights.trainer import (
    DEFAULT_PREFIX_DROPOUT,
    DEFAULT_PREFIX_LR_SCALE,
    LazyAdam,
    level_lr_scale,
    prefix_dropout_mask,
)

SMALL = dict(num_entity_vectors=64, vector_dim=16, epochs=2, mini_batch_size=64)
# 12 users, each in its own /16 with a few /24s and many /32s; one IPv6 user
PAIRS = [(f"user{i % 12}", f"10.{i % 12}.{i % 5}.{i % 250}") for i in range(600)] + [
    ("user6", "2001:db8::6"),
    ("user7", "2001:db8:7::1"),
]
V4_SLOTS = {"family": 0, "/8": 1, "/16": 2, "/24": 3, "/32": 4}


def _indexer(kind="prefix", texts=None):
    addresses, ok = parse_addresses(np.array(texts or [ip for _, ip in PAIRS], dtype=object))
    assert ok.all()
    return AddressIndexer.fit(kind, addresses), addresses


# ------------------------------------------------------------------------------- the mask


def test_mask_drops_only_the_finest_levels_nested_and_at_the_set_rates():
    rng = np.random.default_rng(0)
    is_v6 = np.zeros(40_000, dtype=bool)
    is_v6[::4] = True
    mask = prefix_dropout_mask(rng, is_v6, (0.5, 0.25))
    assert mask.shape == (len(is_v6), NUM_SLOTS)
    v4, v6 = mask[~is_v6], mask[is_v6]
    # family and /8 (IPv6: family, /16, /32, /48) are never dropped
    assert not v4[:, :3].any() and not v6[:, :4].any()
    # nested: a row that lost /24 (/64) lost /32 (/128) too
    assert (v4[:, 4] | ~v4[:, 3]).all() and (v6[:, 5] | ~v6[:, 4]).all()
    assert v4[:, 4].mean() == pytest.approx(0.5, abs=0.02)
    assert v4[:, 3].mean() == pytest.approx(0.25, abs=0.02)
    assert v6[:, 5].mean() == pytest.approx(0.5, abs=0.02)
    assert v6[:, 4].mean() == pytest.approx(0.25, abs=0.02)


def test_mask_is_deterministic_with_the_generator_and_off_without_rates():
    is_v6 = np.zeros(500, dtype=bool)
    a = prefix_dropout_mask(np.random.default_rng(5), is_v6, (0.5,))
    b = prefix_dropout_mask(np.random.default_rng(5), is_v6, (0.5,))
    c = prefix_dropout_mask(np.random.default_rng(6), is_v6, (0.5,))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert prefix_dropout_mask(np.random.default_rng(5), is_v6, ()) is None
    assert prefix_dropout_mask(np.random.default_rng(5), is_v6, (0.0, 0.0)) is None


# --------------------------------------------------------------------------- in training


def _trainer(**settings):
    model = IPInsights(**SMALL, seed=1, **settings)
    trainer, data = model._prepare(load_pairs(PAIRS))
    return model, trainer, data


def _capture_steps(trainer):
    seen = []
    step = trainer.step

    def spy(entity_rows, slots, neg):
        seen.append((slots.clone(), None if neg is None else neg.clone()))
        return step(entity_rows, slots, neg)

    trainer.step = spy
    return seen


def test_training_batches_lose_finest_rows_but_the_stored_slots_do_not():
    model, trainer, data = _trainer(prefix_dropout=(0.5, 0.25))
    stored = data.ip_slots.clone()
    seen = _capture_steps(trainer)
    trainer.epoch(data)
    assert torch.equal(data.ip_slots, stored)  # the data is never modified
    pad = model.net.padding_row
    real = torch.cat([s for s, _ in seen])
    # the batches are a permutation of the data: compare the multiset of rows per column
    for col in (V4_SLOTS["family"], V4_SLOTS["/8"], V4_SLOTS["/16"]):
        assert torch.equal(real[:, col].sort().values, stored[:, col].sort().values)
    known32 = (stored[:, 4] != pad).float().mean()
    kept32 = (real[:, 4] != pad).float().mean()
    assert 0.4 < float(kept32 / known32) < 0.6  # /32 dropped from about half the pairs
    kept24 = (real[:, 3] != pad).float().mean() / (stored[:, 3] != pad).float().mean()
    assert 0.65 < float(kept24) < 0.85  # /24 from about a quarter


def test_random_negatives_go_through_the_same_dropout():
    model, trainer, data = _trainer(prefix_dropout=(0.5,), random_negative_sampling_rate=3)
    calls = []
    drop = trainer.drop_prefixes

    def spy(slots, is_v6):
        out = drop(slots, is_v6)
        calls.append((len(slots), out))
        return out

    trainer.drop_prefixes = spy
    seen = _capture_steps(trainer)
    trainer.epoch(data)
    # one chunk of 3 negatives per pair for this small data set, then one call per batch
    (chunk,) = [out for n, out in calls if n == 3 * len(data.entity_rows)]
    assert len(calls) == 1 + len(seen)
    assert torch.equal(torch.cat([neg for _, neg in seen]), chunk)  # what the steps used


def test_without_dropout_the_batches_are_the_stored_slots():
    _, trainer, data = _trainer(prefix_dropout=())
    seen = _capture_steps(trainer)
    trainer.epoch(data)
    real = torch.cat([s for s, _ in seen])
    assert torch.equal(real.sort(0).values, data.ip_slots.sort(0).values)


def test_always_dropped_levels_are_never_trained_and_coarse_ones_are():
    model = IPInsights(**SMALL, seed=2, prefix_dropout=(1.0, 1.0), prefix_lr_scale=())
    trainer, data = model._prepare(load_pairs(PAIRS))
    before = model.net.ip_table.detach().clone()
    for _ in range(2):
        trainer.epoch(data)
    depth = torch.from_numpy(model.indexer.row_depths())
    after = model.net.ip_table.detach()
    moved = (after != before).any(1)
    assert not moved[(depth == 0) | (depth == 1)].any()  # /32, /24 (/128, /64): no gradient
    assert moved[depth == 3].all()  # every /8 row (IPv6 /32: depth 3 too) was trained


def test_dropout_is_off_when_scoring():
    model = IPInsights(**SMALL, seed=3, prefix_dropout=(1.0, 1.0), prefix_lr_scale=())
    model.fit(PAIRS, progress=False)
    ents, ips = ["user1"] * 3, ["10.1.1.1", "10.1.3.13", "10.1.0.25"]  # training addresses
    first = model.score(ents, ips)
    assert np.array_equal(first, model.score(ents, ips))  # no randomness at scoring time
    # the score uses every known prefix, /24 and /32 included (here still their initial rows)
    addresses, _ = parse_addresses(np.array(ips, dtype=object))
    full = torch.from_numpy(model.indexer.rows(addresses))
    pad = model.net.padding_row
    assert (full[:, 3:5] != pad).all()
    row = model._entity_rows(entity_hashes(np.array(ents, dtype=object)))
    with torch.no_grad():
        e = model.net.entity[torch.from_numpy(row)]
        expect = (e * model.net.encode_ips(full)).sum(1).numpy()
        coarse = (e * model.net.encode_ips(full.masked_fill(torch.arange(6) >= 3, pad))).sum(1)
    assert np.allclose(first, expect, atol=1e-5)
    assert not np.allclose(first, coarse.numpy(), atol=1e-3)


def test_same_seed_same_model_with_dropout_and_dropout_changes_the_model():
    ents, ips = ["user1", "user2", "user3"], ["10.1.1.1", "10.2.9.9", "1.2.3.4"]
    scores = []
    for dropout in ((0.5,), (0.5,), ()):
        m = IPInsights(**SMALL, seed=7, prefix_dropout=dropout, prefix_lr_scale=())
        m.fit(PAIRS, progress=False)
        scores.append(m.score(ents, ips))
    assert np.array_equal(scores[0], scores[1])
    assert not np.array_equal(scores[0], scores[2])


def test_dropout_has_its_own_random_stream_so_a_seed_draws_the_same_negatives():
    _, with_dropout, data = _trainer(prefix_dropout=(0.5, 0.25))
    _, without, data2 = _trainer(prefix_dropout=())
    seen_a, seen_b = _capture_steps(with_dropout), _capture_steps(without)
    with_dropout.epoch(data)
    without.epoch(data2)
    assert with_dropout.rng.bit_generator.state == without.rng.bit_generator.state
    # same negatives, except where dropout blanked a finest level
    a, b = torch.cat([n for _, n in seen_a]), torch.cat([n for _, n in seen_b])
    assert torch.equal(a[:, :3], b[:, :3])


# ---------------------------------------------------------------------- learning rates


def test_row_depths_count_levels_from_the_finest():
    indexer, addresses = _indexer()
    depth = indexer.row_depths()
    rows = indexer.rows(addresses)
    v4 = rows[~addresses.is_v6][0]
    assert depth[v4[:5]].tolist() == [-1, 3, 2, 1, 0]  # family, /8, /16, /24, /32
    v6 = rows[addresses.is_v6][0]
    assert depth[v6].tolist() == [-1, 4, 3, 2, 1, 0]  # family, /16, /32, /48, /64, /128
    assert depth[indexer.padding_row] == -1
    hashed, _ = _indexer("hashed")
    h = hashed.rows(addresses)[~addresses.is_v6][0]
    assert hashed.row_depths()[h[:5]].tolist() == [-1, 3, 2, 1, 0]
    octet, _ = _indexer("octet")
    assert (octet.row_depths() == -1).all()


def test_level_lr_scale_maps_multipliers_to_the_finest_levels_rows():
    indexer, addresses = _indexer()
    scale = level_lr_scale(indexer, (0.25, 0.5))
    rows = indexer.rows(addresses)[~addresses.is_v6][0]
    assert scale[rows[:5]].tolist() == [1.0, 1.0, 1.0, 0.5, 0.25]
    assert float(scale[indexer.padding_row]) == 1.0
    assert level_lr_scale(indexer, ()) is None and level_lr_scale(indexer, (1.0,)) is None
    octet, _ = _indexer("octet")
    assert level_lr_scale(octet, (0.25,)) is None


def test_lazy_adam_row_multiplier_scales_that_rows_step_exactly():
    table = torch.zeros(4, 3)
    opt = LazyAdam(table, lr=0.1, weight_decay=0.0)
    opt.row_lr_scale = torch.tensor([1.0, 0.25, 1.0, 1.0])
    g = torch.tensor([[1.0, -2.0, 0.5], [1.0, -2.0, 0.5]])
    for t in (1, 2, 3):
        opt.step(torch.tensor([0, 1]), g.clone(), t)
    assert torch.allclose(table[1], 0.25 * table[0])
    assert (table[0] != 0).all() and (table[2:] == 0).all()


def test_training_applies_the_multipliers_to_the_ip_table():
    _, trainer, _ = _trainer(prefix_lr_scale=(0.25, 0.5))
    depth = torch.from_numpy(trainer.indexer.row_depths())
    scale = trainer.ip_opt.row_lr_scale
    assert (scale[depth == 0] == 0.25).all() and (scale[depth == 1] == 0.5).all()
    assert (scale[depth >= 2] == 1).all() and trainer.entity_opt.row_lr_scale is None
    _, off, _ = _trainer(prefix_lr_scale=())
    assert off.ip_opt.row_lr_scale is None


# --------------------------------------------------------------------- engine settings


def test_defaults_and_validation():
    model = IPInsights(**SMALL)
    assert model.prefix_dropout == DEFAULT_PREFIX_DROPOUT == (0.5,)
    assert model.prefix_lr_scale == DEFAULT_PREFIX_LR_SCALE == (0.25, 0.25)
    octet = IPInsights(**SMALL, ip_encoder="octet")
    assert octet.prefix_dropout == () and octet.prefix_lr_scale == ()
    assert IPInsights(**SMALL, prefix_dropout=0.3).prefix_dropout == (0.3,)
    assert IPInsights(**SMALL, prefix_dropout=0).prefix_dropout == (0.0,)
    assert IPInsights(**SMALL, prefix_lr_scale=[0.5, 1]).prefix_lr_scale == (0.5, 1.0)
    for bad, match in [
        (dict(prefix_dropout=(0.2, 0.5)), "must not increase"),
        (dict(prefix_dropout=1.5), r"in \[0, 1\]"),
        (dict(prefix_dropout=(0.1, 0.1, 0.1, 0.1)), "at most 3"),
        (dict(prefix_dropout="0.5"), "a number or a list"),
        (dict(prefix_dropout=(True,)), "a number or a list"),
        (dict(prefix_dropout=float("nan")), "a number or a list"),
        (dict(prefix_lr_scale=0), r"in \(0, 10\]"),
        (dict(prefix_lr_scale=(0.5, -1)), r"in \(0, 10\]"),
        (dict(prefix_dropout=0.5, ip_encoder="octet"), "needs prefix levels"),
        (dict(prefix_lr_scale=0.5, ip_encoder="octet"), "needs prefix levels"),
    ]:
        with pytest.raises(SecmlError, match=match):
            IPInsights(**SMALL, **bad)


def test_settings_are_engine_options_not_hyperparameters(tmp_path):
    model = IPInsights(**SMALL, prefix_dropout=(0.4, 0.1), prefix_lr_scale=(0.5,))
    assert "prefix_dropout" not in model.hyperparameters
    with pytest.raises(SecmlError, match="unknown hyperparameter"):
        validate_hyperparameters({**SMALL, "prefix_dropout": 0.5})  # `--hp prefix_dropout=`
    model.fit(PAIRS, progress=False)
    model.save(tmp_path / "m")
    assert "prefix_dropout" not in json.loads((tmp_path / "m" / "hyperparameters.json").read_text())
    engine = json.loads((tmp_path / "m" / "engine.json").read_text())
    assert engine["prefix_dropout"] == [0.4, 0.1] and engine["prefix_lr_scale"] == [0.5]
    loaded = IPInsights.load(tmp_path / "m")
    assert loaded.prefix_dropout == (0.4, 0.1) and loaded.prefix_lr_scale == (0.5,)
    # a model saved before these settings existed was trained without them
    del engine["prefix_dropout"], engine["prefix_lr_scale"]
    (tmp_path / "m" / "engine.json").write_text(json.dumps(engine))
    old = IPInsights.load(tmp_path / "m")
    assert old.prefix_dropout == () and old.prefix_lr_scale == ()
