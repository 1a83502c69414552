"""The solution's cached extraction (cloudtrail_logs.csv_lines) against get_tuple() per record."""

from __future__ import annotations

import functools
import gc
import gzip
import itertools
import json
from collections import Counter

import pytest

from lambda_src import cloudtrail_logs as logs
from lambda_src import ingest_common as common
from lambda_src.cloudtrail_ingest import index
from tests.ingest_support import load_staged, record


class Sub(dict):
    """Not what a parser returns: get_tuple() refuses it (`type(x) is dict`); so must the cache."""


def _variants() -> list:
    """Records of every shape get_tuple() tells apart, each principal and address in several
    records, so that the cache answers most of them."""
    ids = ["AIDAONE", "AROAROLE:session-1", "AROAROLE:session-2", " AIDAPAD ", "AIDA,COMMA"]
    ids += ["AIDA\u00adSOFT", "", ":only-session", "AIDA\ud800LONE", "AIDAé中"]
    ips = ["203.0.113.1", "2001:DB8::1", "::ffff:198.51.100.7", " 192.0.2.9 ", "AWS Internal"]
    ips += ["s3.amazonaws.com", "my-host.corp.example", "not an ip", "", "fe80::1%eth0", "1.2.3"]
    records: list = [record(p, ip) for p, ip in itertools.product(ids, ips)]
    odd_values = [None, 7, 7.0, True, [], ["x"], {"a": 1}]
    records += [record(v, "203.0.113.1") for v in odd_values]  # principalId not a string
    records += [record("AIDAONE", v) for v in odd_values]  # sourceIPAddress not a string
    missing_ip = record("AIDAONE")
    del missing_ip["sourceIPAddress"]
    records += [missing_ip, record("AIDAONE", "203.0.113.1", eventType="AwsCloudTrailInsight")]
    records += [record(identity=v) for v in (None, [], "AIDAONE", Sub(principalId="AIDAONE"))]
    records += [record(identity={"type": "AWSService"}), record(identity={"type": "IAMUser"})]
    records += [record(identity={"type": "AWSService", "principalId": "AIDASVC"})]
    no_identity = record("AIDAONE")
    del no_identity["userIdentity"]
    records += [no_identity, Sub(record("AIDAONE")), None, "text", 5, [record("AIDAONE")]]
    return records * 3 + records[::-1]


def _reference(records: list, ipv4_only: bool) -> tuple[bytes, Counter]:
    """What get_tuple() says of each record, one call each, as the output writes it."""
    lines, skipped = [], Counter()
    for rec in records:
        found = index.get_tuple(rec, ipv4_only=ipv4_only, skipped=skipped)
        if found is not None:
            line = common.tuple_line(*found)
            lines.append(line) if line else skipped.update([common.UNWRITABLE])
    return b"".join(lines), skipped


def test_the_shipped_get_tuple_is_the_one_the_cache_was_checked_against(tmp_path):
    """If this fails, get_tuple() was edited: check that csv_lines()'s cache still holds (what
    get_tuple() reads of a record), then update cloudtrail_logs.GET_TUPLE_CRC32."""
    assert logs.proven_get_tuple(index.get_tuple)
    staged = load_staged("cloudtrail_ingest", solutions=True, out_dir=tmp_path)
    assert logs.proven_get_tuple(staged.get_tuple)  # what the solution deploys


@pytest.mark.parametrize("ipv4_only", [False, True])
def test_cached_lines_equal_get_tuple_on_every_record(ipv4_only):
    records = _variants()
    assert len(records) > 400
    expected, reasons = _reference(records, ipv4_only)
    assert expected and len(reasons) >= 8  # every kind of answer is there
    for _ in range(2):  # a cold cache, then a warm one (with the other ipv4_only's too)
        skipped: Counter = Counter()
        got = logs.csv_lines(records, index.get_tuple, ipv4_only, skipped)
        assert got.csv == expected and len(got) == expected.count(b"\n")
        assert skipped == reasons
        logs.csv_lines(records, index.get_tuple, not ipv4_only, Counter())


def test_cached_lines_equal_get_tuple_on_the_workshop_logs():
    from tests.test_ingest_cloudtrail import WORKSHOP

    records = []
    for f in sorted(WORKSHOP.rglob("*.json.gz")):
        if "Digest" not in f.name:
            records += json.loads(gzip.decompress(f.read_bytes()))["Records"]
    assert len(records) > 40_000
    for ipv4_only in (False, True):
        skipped: Counter = Counter()
        got = logs.csv_lines(records, index.get_tuple, ipv4_only, skipped)
        assert (got.csv, skipped) == _reference(records, ipv4_only)


def test_an_edited_get_tuple_runs_on_every_record():
    """The cache is for the shipped get_tuple() only: an edited one may read any field, so it
    gets every record, repeats included."""
    calls = []

    def edited(rec, **kw):
        calls.append(1)
        found = index.get_tuple(rec, **kw)
        return None if found is None else (f"{found[0]}.{rec.get('eventName')}", found[1])

    records = [record("AIDAONE", "203.0.113.1", eventName=f"Get{n % 3}") for n in range(9)]
    assert not logs.proven_get_tuple(edited)
    got = logs.csv_lines(records, edited, False, Counter())
    assert len(calls) == 9
    assert got.csv.decode().splitlines() == [f"AIDAONE.Get{n % 3},203.0.113.1" for n in range(9)]
    wrapped = functools.partial(index.get_tuple)  # no source of its own: not proven either
    assert not logs.proven_get_tuple(wrapped)
    assert logs.csv_lines(records, wrapped, False, Counter()).csv == b"AIDAONE,203.0.113.1\n" * 9


def test_an_edited_solution_get_tuple_shows_in_the_output(tmp_path, monkeypatch):
    """The deployed solution with get_tuple() edited as text: the edit reads a field the
    cache does not key on, and every record's answer is the edited function's."""
    monkeypatch.setenv("INGEST_WORKERS", "1")

    def edit(text: str) -> str:
        assert "            return principal, ip\n" in text
        return text.replace("return principal, ip", "return principal + rec_name(record), ip", 1)

    staged = load_staged("cloudtrail_ingest", solutions=True, out_dir=tmp_path, edit=edit)
    staged.rec_name = lambda rec: "." + rec["eventName"]
    assert not logs.proven_get_tuple(staged.get_tuple)
    records = [record("AIDAONE", "203.0.113.1", eventName=f"Get{n % 3}") for n in range(9)]
    src = tmp_path / "in"
    src.mkdir()
    (src / "x.json").write_text(json.dumps({"Records": records}))
    out = tmp_path / "out.csv"
    staged.handler({"sources": [str(src)], "output": str(out), "print_limit": 0}, None)
    assert out.read_text().splitlines() == [f"AIDAONE.Get{n % 3},203.0.113.1" for n in range(9)]


@pytest.mark.parametrize("enabled", [True, False])
def test_a_worker_leaves_the_garbage_collector_as_it_found_it(enabled):
    blobs = [json.dumps({"Records": [record()]}).encode(), b"not json", b'{"Records":[]}']
    (gc.enable if enabled else gc.disable)()
    try:
        for blob in blobs:
            logs._work(index.get_tuple, "x.json", blob, False, 0)
            assert gc.isenabled() is enabled
    finally:
        gc.enable()
