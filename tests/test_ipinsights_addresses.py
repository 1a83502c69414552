import ipaddress

import numpy as np
import pytest

from secml.errors import SecmlError, short
from secml.ipinsights.addresses import (
    MAX_ADDRESS_LENGTH,
    format_address,
    parse_addresses,
    random_addresses,
)
from secml.ipinsights.data import entity_hashes, load_pairs
from secml.ipinsights.encoder import AddressIndexer


@pytest.mark.parametrize(
    "text,ok",
    [
        ("1.2.3.4", True),
        ("0.0.0.0", True),
        ("255.255.255.255", True),
        ("256.1.1.1", False),
        ("01.2.3.4", False),  # leading zero: ambiguous (octal), refused like ipaddress
        ("1.2.3", False),
        ("1.2.3.4.5", False),
        ("1.2.3.", False),
        ("1..3.4", False),
        ("1.2.3.4a", False),
        (" 1.2.3.4", False),
        ("1.2.3.04", False),
        ("1.2.3.-4", False),
        ("1.2.3.4/32", False),
        ("0x1.2.3.4", False),
        ("1.2.3.256", False),
        ("1e1.2.3.4", False),
        ("\uff11.2.3.4", False),  # a full-width digit
        ("1.2.3.4%eth0", False),
        ("", False),
        ("2001:db8::1", True),
        ("::1", True),
        ("2001:db8::g", False),
        ("not an address", False),
    ],
)
def test_parsing_agrees_with_ipaddress(text, ok):
    addresses, valid = parse_addresses([text])
    assert bool(valid[0]) is ok
    if ok:
        assert format_address(addresses.is_v6[0], addresses.hi[0], addresses.lo[0]) == str(
            ipaddress.ip_address(text)
        )


def test_vectorised_ipv4_matches_ipaddress_on_random_addresses():
    rng = np.random.default_rng(1)
    values = rng.integers(0, 2**32, 2000, dtype=np.uint64)
    texts = [str(ipaddress.IPv4Address(int(v))) for v in values]
    addresses, ok = parse_addresses(texts)
    assert ok.all() and not addresses.is_v6.any()
    assert (addresses.lo == values).all()


def test_validity_agrees_with_ipaddress_on_random_near_addresses():
    rng = np.random.default_rng(7)
    alphabet = list("0123456789....:af ")
    texts = []
    for _ in range(20_000):
        base = str(ipaddress.IPv4Address(int(rng.integers(0, 2**32))))
        edit = list(base)
        for _ in range(int(rng.integers(0, 3))):
            at = int(rng.integers(0, len(edit) + 1))
            if rng.random() < 0.5 and at < len(edit):
                del edit[at]
            else:
                edit.insert(at, str(rng.choice(alphabet)))
        texts.append("".join(edit))

    def valid(text):
        try:
            ipaddress.ip_address(text)
        except ValueError:
            return False
        return True

    _, ok = parse_addresses(texts)
    assert ok.tolist() == [valid(t) for t in texts]
    assert 0.2 < ok.mean() < 0.9  # both kinds are exercised


def test_ipv4_mapped_ipv6_is_the_ipv4_address():
    addresses, ok = parse_addresses(["::ffff:10.0.0.1", "10.0.0.1"])
    assert ok.all() and not addresses.is_v6.any() and addresses.lo[0] == addresses.lo[1]


def test_ipv6_keeps_all_128_bits():
    addresses, _ = parse_addresses(["2001:db8::1", "2001:db8::2"])
    assert addresses.is_v6.all()
    assert addresses.hi[0] == addresses.hi[1] == 0x20010DB800000000
    assert (addresses.lo == [1, 2]).all()


def test_entity_hash_is_stable_and_distinguishes():
    hashes = entity_hashes(np.array(["alice", "bob", "alice", "ÄLICE"], dtype=object))
    assert hashes[0] == hashes[2] and len(set(hashes.tolist())) == 3
    # a fixed value: saved models must hash an entity the same way in every process
    assert int(entity_hashes(np.array(["alice"], dtype=object))[0]) == int.from_bytes(
        __import__("hashlib").blake2b(b"alice", digest_size=8).digest(), "big"
    )


def _indexer(kind="prefix"):
    train, _ = parse_addresses(["10.1.2.3", "10.1.2.4", "10.9.0.1", "192.168.0.1", "2001:db8::1"])
    return AddressIndexer.fit(kind, train)


def test_prefix_encoder_shares_rows_along_the_prefix_hierarchy():
    indexer = _indexer()
    query, _ = parse_addresses(["10.1.2.3", "10.1.2.99", "10.1.7.7", "11.0.0.1", "2001:db8::1"])
    rows = indexer.rows(query)
    pad = indexer.padding_row
    same_24, same_16, other = rows[1], rows[2], rows[3]
    assert (rows[0][:4] == same_24[:4]).all() and same_24[4] == pad  # new /32 in a known /24
    assert (rows[0][:3] == same_16[:3]).all() and (same_16[3:] == pad).all()
    assert other[0] == rows[0][0] and (other[1:] == pad).all()  # only the IPv4 family row
    assert rows[4][0] != rows[0][0] and (rows[4] != pad).all()  # IPv6: family + 5 prefixes
    assert rows.max() < indexer.num_rows


@pytest.mark.parametrize("kind", ["prefix", "hashed", "octet"])
def test_random_ipv4_fast_path_equals_the_general_path(kind):
    indexer = _indexer(kind)
    fast = indexer.random_ipv4_rows(np.random.default_rng(5), 3000)
    general = indexer.rows(random_addresses(np.random.default_rng(5), np.zeros(3000, dtype=bool)))
    assert (fast == general).all()


def test_random_negatives_keep_the_family():
    is_v6 = np.array([False, True] * 50)
    addresses = random_addresses(np.random.default_rng(0), is_v6)
    assert (addresses.is_v6 == is_v6).all()
    assert (addresses.lo[~is_v6] < 2**32).all() and (addresses.hi[~is_v6] == 0).all()


@pytest.mark.parametrize(
    "text",
    [
        "1.2.3.4\x00",  # numpy's fixed-width strings drop trailing NULs
        "1.2.3.4\x00\x00",
        "\x001.2.3.4",
        "1.2\x00.3.4",
        "::1\x00",
        "2001:db8::1\x00",
        "::ffff:10.0.0.1\x00",
    ],
)
def test_nul_characters_are_refused(text):
    _, ok = parse_addresses([text, "1.2.3.4"])
    assert ok.tolist() == [False, True]


def test_a_value_longer_than_any_address_is_invalid_before_parsing():
    longest = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
    assert len(longest) == MAX_ADDRESS_LENGTH
    _, ok = parse_addresses([longest, longest + " ", "1.2.3.4" + " " * 40, "1" * 20_000])
    assert ok.tolist() == [True, False, False, False]


def test_no_parser_sees_a_value_longer_than_an_address(monkeypatch):
    import secml.ipinsights.addresses as module

    seen: list[int] = []
    real_pton, real_v6 = module._PTON4, module.ipaddress.IPv6Address

    def pton(text):
        seen.append(len(text))
        return real_pton(text)

    def v6(text):
        seen.append(len(text))
        return real_v6(text)

    monkeypatch.setattr(module, "_PTON4", pton)
    monkeypatch.setattr(module.ipaddress, "IPv6Address", v6)
    junk = ["1" * 20_000, "1.2.3.4" * 3000, "::" + "1:" * 5000, "x" * 46]
    _, ok = parse_addresses(["1.2.3.4", "::1", *junk])
    assert ok.tolist() == [True, True, False, False, False, False]
    assert seen and max(seen) <= MAX_ADDRESS_LENGTH


def test_one_huge_junk_value_does_not_multiply_parsing_memory():
    import tracemalloc

    texts = [f"10.{i // 256 % 256}.{i % 256}.1" for i in range(3000)] + ["9" * 20_000]
    tracemalloc.start()
    try:
        _, ok = parse_addresses(texts)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ok[:3000].all() and not ok[3000]
    # before: a 3001 x 20000 matrix of 4-byte code points, 240 MB
    assert peak < 4 * 2**20


def test_error_lines_quote_a_short_prefix_of_a_long_bad_value():
    assert short("1.2.3") == "'1.2.3'"
    quoted = short("x" * 20_000)
    assert quoted.startswith("'xxxx") and "20,000 characters" in quoted and len(quoted) < 80
    with pytest.raises(SecmlError) as raised:
        load_pairs([("alice", "1.2.3.4"), ("bob", "y" * 20_000)])
    assert len(str(raised.value)) < 200 and "line" not in str(raised.value)
    assert "row 2:" in str(raised.value) and "20,000 characters" in str(raised.value)
