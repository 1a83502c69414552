"""Bad input for the ingest (issue 17): no wrong or lost tuple, no record sinks a run, both JSON
backends agree, and what the CSV writer writes the training reader reads back."""

from __future__ import annotations

import gzip
import json
import os
from collections import Counter
from pathlib import Path

import pytest

from lambda_src import cloudtrail_logs as logs
from lambda_src import guardduty_findings as gd
from lambda_src import ingest_common as common
from lambda_src.cloudtrail_ingest import index
from lambda_src.guardduty_ingest import index as gd_index
from tests.ingest_support import record

# (full parse, field reader, inflate, print_limit): the Lambda runtime's stdlib and zlib;
# orjson; and what `secml tuples` runs: msgspec's field reader (print_limit 0), orjson wherever
# it hands over, isal's igzip
WAYS = {
    "stdlib": (json.loads, None, None, {}),
    "orjson": (common._fast_loads, None, None, {}),
    "fields": (common._fast_loads, logs.FIELD_READER, common.igzip, {"print_limit": 0}),
}


def compact(document) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def run_folder(tmp_path: Path, files: dict[str, bytes], *, workers=1, **event) -> tuple:
    """(output lines, summary) of the solution handler over a folder holding `files`."""
    folder = tmp_path / f"src{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    out = folder.with_suffix(".csv")
    os.environ["INGEST_WORKERS"] = str(workers)
    try:
        result = index.handler({"sources": [str(folder)], "output": str(out), **event}, None)
    finally:
        del os.environ["INGEST_WORKERS"]
    lines = out.read_text().splitlines() if out.exists() else []
    result.pop("json_backend")
    result.pop("output")
    return lines, result


def both_ways(tmp_path, data: bytes, monkeypatch) -> tuple:
    """The same bytes as .json and .json.gz, each way of reading them (WAYS) and 1 or 2
    workers: every way must give the same answer, which is returned."""
    answers = []
    for way, (loads, reader, igzip, event) in WAYS.items():
        monkeypatch.setattr(common, "loads", loads)
        monkeypatch.setattr(logs, "FIELD_READER", reader)
        monkeypatch.setattr(common, "igzip", igzip)
        for workers in (1, 2):
            for name, blob in (("x.json", data), ("x.json.gz", gzip.compress(data, mtime=0))):
                answer = run_folder(tmp_path, {name: blob}, workers=workers, **event)
                answers.append(((way, workers, name), answer))
    first = answers[0][1]
    for how, answer in answers:
        assert answer == first, how
    return first


def expected_from_stdlib(data: bytes) -> list[str]:
    return [
        f"{p},{ip}"
        for rec in json.loads(data)["Records"]
        if (found := index.get_tuple(rec)) is not None
        for p, ip in [found]
    ]


# ---- wrong or lost tuples --------------------------------------------------------------------


def test_no_source_ip_never_borrows_one_from_request_parameters(tmp_path, monkeypatch):
    """Records without sourceIPAddress, whose requestParameters hold an object that looks like
    the end of a userIdentity followed by a sourceIPAddress, in CloudTrail's key order and
    others: skipped as no-source-ip, never given that address."""
    lure = {"a": {"b": 1}, "eventTime": "t", "eventSource": "s", "eventName": "n",
            "awsRegion": "r", "sourceIPAddress": "6.6.6.6"}  # fmt: skip
    missing = record("AIDAMISSING")
    del missing["sourceIPAddress"]
    missing["requestParameters"] = lure
    params_first = {
        "eventVersion": "1.09",
        "userIdentity": missing["userIdentity"],
        "requestParameters": lure,
        "eventTime": "2025-06-02T10:00:00Z",
    }
    sessions = record("AIDASESSION")
    del sessions["sourceIPAddress"]
    sessions["userIdentity"]["sessionContext"] = lure
    records = [record("AIDAGOOD", "192.0.2.1"), missing, params_first, sessions]
    lines, result = both_ways(tmp_path, compact({"Records": records}), monkeypatch)
    assert lines == ["AIDAGOOD,192.0.2.1"]
    assert result["skipped"] == {"no-source-ip": 3}
    assert "6.6.6.6" not in "".join(lines)


@pytest.mark.parametrize(
    "text",
    [
        '{"Records":[R1],"Records":[R2]}',
        '{"Records":[R1,R2],"other":1,"Records":[R2]}',
        '{"Rec\\u006frds":[R1],"Records":[R2]}',  # the same key, spelled with an escape
    ],
)
def test_records_key_twice_refuses_the_file(tmp_path, monkeypatch, text):
    r1, r2 = (compact(record(f"AIDA{n}", f"192.0.2.{n}")).decode() for n in (1, 2))
    data = text.replace("R1", r1).replace("R2", r2).encode()
    lines, result = both_ways(tmp_path, data, monkeypatch)
    assert lines == [] and result["files_skipped"] == {"not-a-cloudtrail-log": 1}
    assert result["records"] == 0


@pytest.mark.parametrize(
    "junk",
    [
        lambda log: log + b"junk}]}",  # a valid log, then junk that ends like one
        lambda log: log + log,  # two logs, one after the other
        lambda log: log.replace(b'"readOnly":true', b'"readOnly":true!!', 1),  # junk inside
        lambda log: log.replace(b'"readOnly":true', b'"readOnly":tru', 1),
        lambda log: log.replace(b'"readOnly":true,', b'"readOnly":true,,', 1),
        lambda log: log.replace(b'"requestID":"', b'"requestID":"\x01', 1),  # control char
        lambda log: log.replace(b'"userAgent":"aws-cli', b'"userAgent":"\xff\xfe', 1),  # not UTF-8
        lambda log: log[:-3] + b",]}",  # a trailing comma
    ],
)
def test_a_log_with_junk_is_refused_whole(tmp_path, monkeypatch, junk):
    log = compact({"Records": [record("AIDA1", "192.0.2.1"), record("AIDA2", "192.0.2.2")]})
    lines, result = both_ways(tmp_path, junk(log), monkeypatch)
    assert lines == [] and result["files_skipped"] == {"not-json": 1}
    assert result["records"] == 0 and result["files_read"] == 0


def test_a_record_hidden_in_another_is_not_a_record(tmp_path, monkeypatch):
    """A whole fake record inside an array in requestParameters: part of its record only."""
    fake = record("AIDAFAKE", "6.6.6.6")
    host = record("AIDAHOST", "192.0.2.3", requestParameters={"items": [{"x": 1}, fake]})
    data = compact({"Records": [record("AIDA1", "192.0.2.1"), host]})
    lines, result = both_ways(tmp_path, data, monkeypatch)
    assert lines == ["AIDA1,192.0.2.1", "AIDAHOST,192.0.2.3"] and result["records"] == 2


def test_layouts_other_than_cloudtrails_give_the_same_tuples(tmp_path, monkeypatch):
    """json.dump's default spacing, indentation, keys in reverse order: get_tuple() of each."""
    records = [record(f"AIDA{n}", f"192.0.2.{n}") for n in range(5)] + [record("AIDAX", None)]
    reverse = [dict(reversed(list(r.items()))) for r in records]
    for data in (
        json.dumps({"Records": records}).encode(),
        json.dumps({"Records": records}, indent=2).encode(),
        compact({"Records": reverse}),
    ):
        lines, result = both_ways(tmp_path, data, monkeypatch)
        assert lines == expected_from_stdlib(data) == [f"AIDA{n},192.0.2.{n}" for n in range(5)]
        assert result["skipped"] == {"no-source-ip": 1}


# ---- one bad record must not sink a run ------------------------------------------------------


def test_a_lone_surrogate_is_skipped_and_counted(tmp_path, monkeypatch, capsys):
    good = compact(record("AIDAGOOD", "192.0.2.1")).decode()
    escaped = compact(record("AIDA\\ud800X", "192.0.2.2")).decode().replace("\\\\", "\\")
    data = ('{"Records":[' + good + "," + escaped + "]}").encode()
    assert json.loads(data)["Records"][1]["userIdentity"]["principalId"] == "AIDA\ud800X"
    lines, result = both_ways(tmp_path, data, monkeypatch)
    assert lines == ["AIDAGOOD,192.0.2.1"] and result["skipped"] == {"bad-principal-id": 1}
    # printed as the Lambda prints its first records: no UnicodeEncodeError either
    index.print_short_record(json.loads(data)["Records"][1])
    assert "AIDA" in capsys.readouterr().out


@pytest.mark.parametrize(
    "transform",
    [
        lambda data: b"\xef\xbb\xbf" + data,  # a UTF-8 BOM
        lambda data: data.replace(b'"readOnly":true', b'"readOnly":NaN'),
        lambda data: data.replace(b'"readOnly":true', b'"readOnly":-Infinity'),
        lambda data: data.replace(b'"readOnly":true', b'"readOnly":123456789012345678901234567890'),
        lambda data: b"[" * 100_000 + b"]" * 100_000,  # nested past any parser's depth
    ],
)
def test_stdlib_and_orjson_give_identical_output(tmp_path, monkeypatch, transform):
    data = transform(compact({"Records": [record("AIDA1", "192.0.2.1")] * 3}))
    lines, result = both_ways(tmp_path, data, monkeypatch)
    if data.startswith(b"["):
        assert result["files_skipped"] == {"not-json": 1}
    else:
        assert lines == ["AIDA1,192.0.2.1"] * 3


# ---- what a tuple may hold: the writer and the reader agree ----------------------------------

NASTY = [
    "AIDA\rCR",
    "AIDA\nLF",
    "AIDA\u2028LS",
    "AIDA\u2029PS",
    "AIDA\x85NEL",
    "AIDA\x00NUL",
    "AIDA\x1bESC",
    "AIDA\tTAB",
    "AIDA\u200bZWSP",
    "AIDA,COMMA",
    'AIDA"QUOTE',
    "AIDA\ud800",
    "\u00a0",
]


@pytest.mark.parametrize("principal", NASTY)
def test_the_writer_refuses_what_the_reader_would(tmp_path, monkeypatch, principal):
    rec = record(principal, "192.0.2.1")
    data = compact({"Records": [record("AIDAOK", "192.0.2.9"), rec]})
    lines, result = both_ways(tmp_path, data, monkeypatch)
    assert lines == ["AIDAOK,192.0.2.9"] and result["skipped"] == {"bad-principal-id": 1}


def test_everything_the_writer_writes_the_reader_reads_back(tmp_path):
    """Principals from every odd character class that pass the rule, written by the ingest's
    output and read by the training reader: every row back, unchanged, none refused."""
    from secml.ipinsights.data import load_pairs

    alphabet = "aZ09:_-./@+=é中\U0001f600 ~'`\\|#$%^&*()[]{}<>?!"
    principals = [f"P{i}{c}{alphabet[(i * 7) % len(alphabet)]}X" for i, c in enumerate(alphabet)]
    principals += [p + c for p in ("AIDA",) for c in "é中\U0001f600\u00ad"]  # \u00ad: refused
    written = [(p, "192.0.2.1") for p in principals if common.principal_of(p) == p]
    assert 30 < len(written) < len(principals)
    skipped: Counter = Counter()
    out = common.TupleOutput(str(tmp_path / "t.csv"), skipped)
    out.write(written + [("AIDA\r", "192.0.2.1"), ("AIDA", "192.0.2.1\n")])
    out.publish()
    assert skipped == {common.UNWRITABLE: 2}
    pairs = load_pairs(tmp_path / "t.csv")
    assert pairs.skipped == 0 and list(zip(pairs.entities, pairs.ip_texts, strict=True)) == written


def test_a_get_tuple_that_breaks_the_rule_is_counted_not_written(tmp_path, monkeypatch):
    """The exercise file is the attendee's to change: whatever their get_tuple() returns, the
    output holds only tuples the reader takes."""
    monkeypatch.setattr(index, "get_tuple", lambda record, **kw: ("bad\nprincipal", "1.2.3.4"))
    assert index.get_tuples([record(), record()]) == [("bad\nprincipal", "1.2.3.4")] * 2
    skipped: Counter = Counter()
    lines = logs.csv_lines([record()] * 2, index.get_tuple, False, skipped)
    assert len(lines) == 0 and skipped == {common.UNWRITABLE: 2}


# ---- GuardDuty -------------------------------------------------------------------------------


def finding(principal: str, *addresses: str, version: str = "IpAddressV4") -> dict:
    return {
        "Type": "Recon:IAMUser/MaliciousIPCaller",
        "Resource": {"AccessKeyDetails": {"PrincipalId": principal}},
        "Service": {
            "Action": {
                "PortProbeAction": {
                    "PortProbeDetails": [{"RemoteIpDetails": {version: a}} for a in addresses]
                }
            }
        },
    }


def test_every_unusable_address_of_a_finding_is_counted():
    skipped: Counter = Counter()
    found = gd_index.get_tuples(
        [
            finding("AIDA1", "192.0.2.1", "not-an-address", "192.0.2.1", "AWS Internal"),
            finding("AIDA2", "2001:db8::1", version="IpAddressV6"),
            finding("AIDA3", "192.0.2.3", "2001:db8::3"),
            finding("AIDA4", "1.2.3.4\x00"),
        ],
        ipv4_only=True,
        skipped=skipped,
    )
    assert found == [("AIDA1", "192.0.2.1"), ("AIDA3", "192.0.2.3")]
    assert skipped == {"not-an-ip": 2, "aws-internal": 1, "ipv6-excluded": 2}


def test_findings_nested_in_arrays_are_read(tmp_path):
    f1, f2, f3 = (finding(f"AIDA{n}", f"192.0.2.{n}") for n in (1, 2, 3))
    assert gd.findings_in([[f1, f2], [[f3]], {"Findings": [[f1]]}]) == [f1, f2, f3, f1]
    lines = b"\n".join(compact(x) for x in ([f1, f2], [f3], f1))  # JSON Lines of arrays
    (tmp_path / "findings.jsonl").write_bytes(lines)
    out = tmp_path / "o.csv"
    result = gd_index.handler({"sources": [str(tmp_path)], "output": str(out)}, None)
    assert out.read_text().splitlines() == [
        "AIDA1,192.0.2.1",
        "AIDA2,192.0.2.2",
        "AIDA3,192.0.2.3",
        "AIDA1,192.0.2.1",
    ]
    assert result["findings"] == 4 and result["skipped"] == {}


def test_a_finding_with_a_lone_surrogate_principal_is_skipped(tmp_path):
    text = compact([finding("AIDA\\ud800", "192.0.2.1"), finding("AIDA1", "192.0.2.2")])
    (tmp_path / "f.json").write_bytes(text.replace(b"\\\\ud800", b"\\ud800"))
    out = tmp_path / "o.csv"
    result = gd_index.handler({"sources": [str(tmp_path / "f.json")], "output": str(out)}, None)
    assert out.read_text() == "AIDA1,192.0.2.2\n"
    assert result["skipped"] == {"bad-principal-id": 1}


# ---- local sources: links, loops, what cannot be read ----------------------------------------


def test_links_are_followed_once_and_what_is_not_read_is_counted(tmp_path, monkeypatch):
    logs_dir = tmp_path / "elsewhere"
    logs_dir.mkdir()
    (logs_dir / "a.json.gz").write_bytes(gzip.compress(compact({"Records": [record("AIDAA")]})))
    src = tmp_path / "src"
    (src / "real").mkdir(parents=True)
    (src / "real" / "b.json.gz").write_bytes(gzip.compress(compact({"Records": [record("AIDAB")]})))
    (src / "linked").symlink_to(logs_dir)  # a linked folder: read
    (src / "again").symlink_to(logs_dir)  # the same folder again: counted, not read twice
    (src / "real" / "loop").symlink_to(src)  # a loop back up: counted, not followed forever
    (src / "same.json.gz").symlink_to(src / "real" / "b.json.gz")  # a file read already
    (src / "dangling.json.gz").symlink_to(tmp_path / "nowhere")
    os.mkfifo(src / "fifo.json")
    unreadable = src / "real" / "c.json.gz"
    unreadable.write_bytes(b"x")
    real_read = Path.read_bytes

    def read_bytes(self):
        if self == unreadable:
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    out = tmp_path / "o.csv"
    monkeypatch.setenv("INGEST_WORKERS", "1")
    result = index.handler({"sources": [str(src)], "output": str(out)}, None)
    assert sorted(out.read_text().splitlines()) == [
        "AIDAA,203.0.113.10",
        "AIDAB,203.0.113.10",
    ]
    assert result["files_skipped"] == {
        "broken-link": 1,
        "file-already-read": 1,
        "folder-already-read": 2,
        "not-a-file": 1,
        "read-error": 1,
    }
