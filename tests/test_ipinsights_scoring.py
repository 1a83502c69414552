"""Scoring at volume (secml/ipinsights/scoring.py, IPInsights.score_distinct): the same scores
as the network's own forward pass, and `secml score`'s streamed reading giving the same rows,
line numbers and complaints as load_pairs, block boundaries anywhere."""

import io
import json

import numpy as np
import pytest
import torch

import secml.ipinsights.scoring as scoring
from secml.errors import SecmlError
from secml.ipinsights import IPInsights
from secml.ipinsights.data import CsvBytes, entity_hashes, load_pairs
from secml.ipinsights.scoring import (
    distinct_entity_hashes,
    factorize_texts,
    format_dot_products,
    score_csv,
)

PAIRS = [(f"user{i % 12}", f"10.{i % 12}.{i % 5}.{i % 250}") for i in range(600)] + [
    ("user6", "2001:db8::6"),
    ("user7", "2001:db8:7::1"),
]


@pytest.fixture(scope="module", params=[0, 1, 2], ids=lambda n: f"{n}-layers")
def model(request):
    model = IPInsights(
        num_entity_vectors=64,
        vector_dim=16,
        epochs=1,
        mini_batch_size=64,
        num_ip_encoder_layers=request.param,
        seed=3,
    )
    model.fit(PAIRS, progress=False)
    return model


def forward_scores(model, entities, ips):
    """The network's plain forward pass, row by row: entity row (population if unseen) . IP
    embedding through every FC layer."""
    pairs = load_pairs(list(zip(entities, ips, strict=True)))
    known = model.known_entities(pairs.entities)
    rows = model._entity_rows(entity_hashes(pairs.entities))
    with torch.no_grad():
        e = model.net.entity[torch.from_numpy(rows)]
        e = torch.where(torch.from_numpy(known)[:, None], e, model.net.population)
        h = model.net.encode_ips(torch.from_numpy(model.indexer.rows(pairs.addresses)))
        return (e.double() * h.double()).sum(1).numpy()


def test_scores_equal_the_forward_pass_with_any_number_of_layers(model):
    rng = np.random.default_rng(0)
    entities = [f"user{int(i)}" for i in rng.integers(0, 15, 3000)]  # 12, 13, 14: unseen
    ips = [f"10.{int(a)}.{int(b)}.{int(c)}" for a, b, c in rng.integers(0, 14, (3000, 3))]
    ips[:3] = ["2001:db8::6", "2001:db8:7::1", "::ffff:10.1.1.1"]
    scores = model.score(entities, ips)
    assert scores.dtype == np.float64
    np.testing.assert_allclose(scores, forward_scores(model, entities, ips), rtol=1e-5, atol=1e-5)


def test_repeated_pairs_and_shared_addresses_score_alike(model, monkeypatch):
    entities = ["user1", "user2", "user1", "user3", "user1"] * 50
    ips = ["10.1.1.1", "10.1.1.1", "10.1.1.1", "10.2.2.2", "10.3.3.3"] * 50
    expected = forward_scores(model, entities, ips)
    np.testing.assert_allclose(model.score(entities, ips), expected, rtol=1e-5, atol=1e-5)
    # both ways of encoding addresses: once per address, and once per pair
    monkeypatch.setattr("secml.ipinsights.scorer.SCORE_ROWS", 7)
    np.testing.assert_allclose(model.score(entities, ips), expected, rtol=1e-5, atol=1e-5)


def test_score_accepts_what_it_did_before(model):
    import pandas as pd

    expected = model.score(["user1", "user2"], ["10.1.1.1", "10.2.2.2"])
    frame = pd.DataFrame({"e": [" user1", "user2 "], "ip": ["10.1.1.1 ", " 10.2.2.2"]})
    assert model.score(frame["e"], frame["ip"]).tolist() == expected.tolist()
    assert model.score(iter(["user1", "user2"]), ("10.1.1.1", "10.2.2.2")).tolist() == (
        expected.tolist()
    )
    assert model.score(np.array(["user1", "user2"]), np.array(["10.1.1.1", "10.2.2.2"])).tolist()
    assert len(model.score([], [])) == 0
    with pytest.raises(SecmlError, match=r"row 3: '1\.2\.3' is not an IPv4"):
        model.score(["a", "b", "c"], ["1.1.1.1", "2.2.2.2", "1.2.3"])


def test_factorize_texts_strips_and_merges_like_str_strip():
    codes, uniques = factorize_texts(["a", " a", "b ", None, 7, "7", "b", float("nan")])
    assert [uniques[c] for c in codes] == ["a", "a", "b", "None", "7", "7", "b", "nan"]
    assert len(uniques) == 5


def test_entity_hashes_agree_with_training():
    names = ["alice", "bob", "ÄLICE", "arn:aws:iam::123456789012:user/x", ""]
    assert (distinct_entity_hashes(names) == entity_hashes(np.array(names, dtype=object))).all()


def test_json_lines_read_back_as_the_same_doubles():
    values = np.array([-7.23552131652832, 1e-05, 1e16, 0.1, -0.0, 5e-324, 3.4e38, 1 / 3])
    lines = format_dot_products(values).decode().splitlines()
    assert all(line.startswith('{"dot_product": ') for line in lines)
    assert [json.loads(line)["dot_product"] for line in lines] == values.tolist()
    assert format_dot_products(np.zeros(0)) == b""


# ------------------------------------------------------------------------------ the CLI path

TRICKY = [
    'user1,10.1.1.1\n"user2,10.2.2.2\nuser3,10.3.3.3\n',  # a stray quote costs its own row only
    "user1,10.1.1.1\n" * 3,
    "\ufeffuser1,10.1.1.1\nuser2,10.2.2.2\n",  # a byte-order mark
    "user1,10.1.1.1\r\nuser2,10.2.2.2\r\n",  # CRLF
    "user1,10.1.1.1\n\nuser2,10.2.2.2\n\n",  # blank lines
    "user1 , 10.1.1.1\n\tuser2,10.2.2.2 \n",  # spaces
    '"user1",10.1.1.1\n"us,er2","10.2.2.2"\n',  # quoted fields
    "üser1,10.1.1.1\nuser2,2001:db8::6\n",  # non-ASCII, IPv6
    "user1,10.1.1.1\nuser2,10.2.2.2",  # no final newline
    "user1,10.1.1.1\nuser2,10.2.2.999\nuser3,10.3.3.3\n",  # a bad address
    "user1,10.1.1.1\n,10.2.2.2\nuser3\nuser4,1,2\n",  # empty entity, field counts
    "user1,10.1.1.1\r\nuser2,10.2.2.2\n",  # mixed line ends
    "user1,10.1.1.1\x00\nuser2," + "9" * 5000 + "\nuser3,10.3.3.3\n",  # NUL, junk
]


def expected_lines(model, text: str, skip_invalid: bool):
    pairs = load_pairs(CsvBytes(text.encode("utf-8"), "in.csv"), skip_invalid=skip_invalid)
    scores = [p["dot_product"] for p in model.predict_pairs(pairs)["predictions"]]
    return scores, pairs


def streamed(model, text: str, **kwargs):
    out = io.BytesIO()
    summary = score_csv(model, io.BytesIO(text.encode("utf-8")), "in.csv", out, **kwargs)
    lines = out.getvalue().decode().splitlines()
    return [json.loads(line)["dot_product"] for line in lines], summary


@pytest.mark.parametrize("block_bytes", [16, 1 << 22], ids=["tiny-blocks", "one-block"])
@pytest.mark.parametrize("text", TRICKY, ids=range(len(TRICKY)))
def test_streamed_scoring_reads_what_load_pairs_reads(model, text, block_bytes, monkeypatch):
    monkeypatch.setattr(scoring, "BLOCK_BYTES", block_bytes)
    for skip_invalid in (False, True):
        try:
            want, pairs = expected_lines(model, text, skip_invalid)
        except SecmlError as exc:
            with pytest.raises(SecmlError) as raised:
                streamed(model, text, skip_invalid=skip_invalid)
            assert str(raised.value) == str(exc)
            continue
        got, summary = streamed(model, text, skip_invalid=skip_invalid)
        assert got == pytest.approx(want, rel=1e-5, abs=1e-5)
        assert summary.rows == len(pairs) and summary.skipped == pairs.skipped
        if pairs.skipped:
            assert summary.first_problem == pairs.problems[0]


def test_a_bad_row_stops_it_with_nothing_written(model, monkeypatch):
    monkeypatch.setattr(scoring, "BLOCK_BYTES", 64)
    text = "".join(f"user{i % 5},10.0.{i % 7}.1\n" for i in range(500))
    text += "user1,10.0.0.1.1\n" + "user2,10.0.0.2\n" * 100 + "user3,x\n"
    out = io.BytesIO()
    with pytest.raises(SecmlError) as raised:
        score_csv(model, io.BytesIO(text.encode()), "in.csv", out)
    assert str(raised.value) == (
        "in.csv line 501: '10.0.0.1.1' is not an IPv4 or IPv6 address (1 more invalid rows); "
        "use --skip-invalid to skip invalid rows"
    )
    assert out.getvalue() == b""


def test_not_utf8_names_its_line_in_any_block(model, monkeypatch):
    monkeypatch.setattr(scoring, "BLOCK_BYTES", 32)
    raw = b"".join(b"user1,10.0.0.1\n" for _ in range(40)) + b"us\xffer,10.0.0.1\n"
    with pytest.raises(SecmlError, match=r"^in\.csv line 41: not UTF-8 text$"):
        score_csv(model, io.BytesIO(raw), "in.csv", io.BytesIO())


def test_empty_input_is_an_error(model):
    for raw, reason in ((b"", "empty file"), (b"\n\n", "empty file"), (b"a,b\n", "no valid rows")):
        with pytest.raises(SecmlError, match=rf"in\.csv: no entity,ip pairs \({reason}\)"):
            score_csv(model, io.BytesIO(raw), "in.csv", io.BytesIO(), skip_invalid=True)


def test_input_is_scored_block_by_block(model, monkeypatch):
    """Memory does not grow with the input: no call sees more than a block's rows, and the
    output goes to a spool that moves to a file past its limit."""
    monkeypatch.setattr(scoring, "BLOCK_BYTES", 4096)
    monkeypatch.setattr(scoring, "SPOOL_BYTES", 10_000)
    sizes = []
    real = model.score_distinct

    def spy(entities, entity_codes, addresses, address_codes):
        sizes.append(len(entity_codes))
        return real(entities, entity_codes, addresses, address_codes)

    monkeypatch.setattr(model, "score_distinct", spy)
    text = "".join(f"user{i % 9},10.{i % 3}.{i % 11}.{i % 250}\n" for i in range(20_000))
    out = io.BytesIO()
    summary = score_csv(model, io.BytesIO(text.encode()), "in.csv", out)
    assert summary.rows == 20_000 == sum(sizes) and len(out.getvalue().splitlines()) == 20_000
    assert len(sizes) > 50 and max(sizes) <= 4096 // len("u,1.1.1.1\n")
    monkeypatch.undo()
    want = model.score(*zip(*(line.split(",") for line in text.splitlines()), strict=True))
    got = [json.loads(line)["dot_product"] for line in out.getvalue().splitlines()]
    assert got == pytest.approx(want.tolist(), rel=1e-5, abs=1e-6)


def test_secml_score_writes_nothing_when_a_late_row_is_bad(tmp_path, monkeypatch):
    from secml.cli import main

    model = IPInsights(num_entity_vectors=32, vector_dim=8, epochs=1, seed=1)
    model.fit(PAIRS, progress=False)
    model.save(tmp_path / "model")
    good = "".join(f"user{i % 5},10.0.{i % 7}.1\n" for i in range(3000))
    (tmp_path / "in.csv").write_text(good + "user1,10.0.0.1\x00\n")
    monkeypatch.setattr(scoring, "BLOCK_BYTES", 1024)
    out = io.BytesIO()
    monkeypatch.setattr("sys.stdout", io.TextIOWrapper(out))
    args = ["score", "--model-dir", str(tmp_path / "model"), str(tmp_path / "in.csv")]
    assert main(args) == 2
    assert out.getvalue() == b""
    assert main(["score", "--skip-invalid", *args[1:]]) == 0
    assert len(out.getvalue().splitlines()) == 3000
