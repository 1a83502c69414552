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


# ---- the field reader (read_fields): the same answers as the full parse ----------------------


def _fields_answer(data: bytes, ipv4_only: bool) -> tuple[bytes, Counter]:
    found = logs.read_fields(data)
    assert found is not None, "the field reader handed this file to the full parse"
    records, _ = found
    skipped: Counter = Counter()
    got = logs.csv_lines(records, index.get_tuple, ipv4_only, skipped)
    return got.csv, skipped


@pytest.mark.parametrize("ipv4_only", [False, True])
def test_field_reader_lines_equal_get_tuple_on_every_record(ipv4_only):
    """Every record shape get_tuple() tells apart, as bytes: the field reader's lines and
    counts are get_tuple()'s on each record of json.loads' parse (cold cache, then warm)."""
    records = [r for r in _variants() if "\ud800" not in json.dumps(r, ensure_ascii=False)]
    data = json.dumps({"Records": records}).encode()
    parsed = json.loads(data)["Records"]
    for _ in range(2):
        assert _fields_answer(data, ipv4_only) == _reference(parsed, ipv4_only)


@pytest.mark.parametrize(
    "record_text",
    [
        b'{"userIdentity":{"principalId":"AIDAONE"},'
        b'"sourceIPAddress":"203.0.113.1","sourceIPAddress":"198.51.100.2"}',
        b'{"userIdentity":{"principalId":"AIDAONE","principalId":"AIDATWO"},'
        b'"sourceIPAddress":"203.0.113.1"}',
        b'{"userIdentity":{"principalId":"AIDAONE"},"userIdentity":{"type":"AWSService"},'
        b'"sourceIPAddress":"203.0.113.1"}',
        b'{"eventType":"AwsApiCall","userIdentity":{"principalId":"AIDAONE"},'
        b'"sourceIPAddress":"203.0.113.1","eventType":"AwsCloudTrailInsight"}',
        b'{"userIdentity":{"principalId":"AIDAONE"},"sourceIPAddress":"203.0.113.1",'
        b'"source\\u0049PAddress":"198.51.100.2"}',
        b'{"userIdentity":{"principalId":"AIDAONE"},"sourceIPAddress":"203.0.113.1",'
        b'"userAgent":"caf\xc3\xa9 \xed\xa0\x80"}',  # UTF-8 and an encoded surrogate, unread
    ],
)
def test_field_reader_takes_repeated_keys_and_unread_text_as_json_loads_does(record_text):
    """A repeated key keeps its last value (escaped spellings too), as json.loads does, and
    text in fields the reader skips is accepted exactly where json.loads accepts it."""
    plain = b'{"userIdentity":{"principalId":"AIDAONE"},"sourceIPAddress":"203.0.113.1"}'
    data = b'{"Records":[' + plain + b"," + record_text + b"," + record_text + b"]}"
    parsed = json.loads(data)["Records"]
    assert _fields_answer(data, False) == _reference(parsed, False)


NEST = b"[" * 300 + b"]" * 300


@pytest.mark.parametrize(
    "change",
    [
        lambda d: b"\xef\xbb\xbf" + d,  # a UTF-8 BOM: json.loads takes it, msgspec does not
        lambda d: d.replace(b'"eventName":"x"', b'"eventName":"\xff"'),  # not UTF-8, unread
        lambda d: d.replace(b'"readOnly":true', b'"readOnly":NaN'),
        lambda d: d.replace(b'"sourceIPAddress":"203.0.113.1"', b'"sourceIPAddress":1e999'),
        lambda d: d.replace(b'"eventName":"x"', b'"eventName":"\\ud800"'),  # lone surrogate
        lambda d: d.replace(b'"readOnly":true', b'"readOnly":' + NEST),
        lambda d: d.replace(b'"Records":[', b'"Records":{"a":[').replace(b"]}", b"]}}"),
        lambda d: b"[" + d + b"]",
        lambda d: d + b" junk",
        lambda d: d + b"\x0c",  # a form feed is not JSON whitespace
    ],
)
def test_field_reader_hands_what_it_cannot_promise_to_the_full_parse(change):
    """Where msgspec's answer could differ from json.loads' (or it refuses), read_fields()
    returns None and the full parse decides; the file as it was is read by the reader."""
    rec = record("AIDAONE", "203.0.113.1", eventName="x", readOnly=True)
    data = json.dumps({"Records": [rec]}, separators=(",", ":")).encode()
    assert logs.read_fields(data) is not None
    changed = change(data)
    assert changed != data
    assert logs.read_fields(changed) is None


def test_field_reader_takes_nesting_below_its_limit():
    rec = record("AIDAONE", "203.0.113.1", deep=json.loads(b"[" * 150 + b"]" * 150))
    assert logs.read_fields(json.dumps({"Records": [rec]}).encode()) is not None


def test_the_cli_path_reads_the_workshop_logs_with_the_field_reader(tmp_path, monkeypatch):
    """`secml tuples` prints no records, so every workshop file goes through read_fields(), and
    the output is the full parse's, byte for byte."""
    from tests.test_ingest_cloudtrail import WORKSHOP

    monkeypatch.setenv("INGEST_WORKERS", "1")
    read, decided = [], []

    def spy(data):
        records = real(data)
        read.append(1)
        decided.append(records is not None)
        return records

    real = logs.read_fields
    event = {"sources": [str(WORKSHOP)], "print_limit": 0}
    monkeypatch.setattr(logs, "read_fields", spy)
    fields = index.handler({**event, "output": str(tmp_path / "fields.csv")}, None)
    assert read and all(decided) and len(read) == fields["files_read"]
    monkeypatch.setattr(logs, "FIELD_READER", None)
    full = index.handler({**event, "output": str(tmp_path / "full.csv")}, None)
    assert {**fields, "output": None} == {**full, "output": None}
    assert (tmp_path / "fields.csv").read_bytes() == (tmp_path / "full.csv").read_bytes()


REC = json.dumps(record("AIDAONE", "203.0.113.1"))


@pytest.mark.parametrize(
    "text",
    [
        '{"Records":[@,@]}',
        '{"Records": [@, @]}\n',
        '\r\n {\n  "Records" :\n  [\n @,\n @\n ]\n}\t\n',
    ],
)
def test_a_cloudtrail_layout_shows_its_records_key_once_without_a_count(text):
    """The Records value runs to the closing brace and nothing before it reads Records as a
    key: read_fields() says the key appears once, and the records are the full parse's."""
    data = text.replace("@", REC).encode()
    records, once = logs.read_fields(data)
    assert once and len(records) == 2
    assert _fields_answer(data, False) == _reference(json.loads(data)["Records"], False)


@pytest.mark.parametrize(
    "text, refused",
    [
        ('{"Records":[@,@],"other":1}', False),  # a member after the records
        ('{"x":{"Records":[]},"Records":[@,@]}', False),  # the first "Records" is nested
        ('{"x":[1,"Records"],"Records":[@,@]}', False),  # ... or a value
        ('{"x":"\\"Records","Records":[@,@]}', False),  # a string ending \"Records"
        ('{"Rec\\u006frds":[],"Records":[@,@]}', True),  # twice, once spelled with an escape
        ('{"Records":[],"Records":[@,@]}', True),  # twice, plainly
    ],
)
def test_other_layouts_leave_the_records_key_to_the_count(text, refused):
    """Where the cheap proof does not hold, read_fields() decodes the whole document and says
    nothing about the key (once is False): parse_log() counts it in the text, and refuses the
    file where the key is there twice."""
    data = text.replace("@", REC).encode()
    json.loads(data)  # valid JSON, each of them
    found = logs.read_fields(data)
    assert found is not None and found[1] is False and len(found[0]) == 2
    records, skip = logs.parse_log(data, fields=True)
    if refused:
        assert skip == ("not-a-cloudtrail-log", "the Records key appears more than once")
    else:
        assert skip is None and len(records) == 2
