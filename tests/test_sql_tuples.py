"""The SQL tuple query (secml/sql), run by DuckDB, against the CloudTrail Lambda: the reference.

Every comparison is of multisets (the SQL gives no order; duplicates count)."""

from __future__ import annotations

import gzip
import json
import logging
import random
from collections import Counter
from pathlib import Path

import pytest
import sqlglot

from lambda_src.athena_tuples.params import as_literals, query_parameters
from lambda_src.cloudtrail_ingest import index
from secml.sql import duckdb_engine
from secml.sql.query import tuple_query
from tests.ingest_support import ACCOUNT, aws, record
from tests.test_ingest_cloudtrail import _adversarial_records, messy_bucket

WORKSHOP = Path(__file__).resolve().parents[1] / "data" / "workshop" / "cloudtrail"


def lines_of(path: Path) -> list[str]:
    """CSV lines, split on '\\n' only (a principal may hold a '\\r', as the Lambda writes it)."""
    return path.read_bytes().decode().split("\n")[:-1] if path.exists() else []


def lambda_tuples(sources: list[str], out: Path, ipv4_only: bool) -> Counter:
    event = {"sources": sources, "output": str(out), "print_limit": 0, "ipv4_only": ipv4_only}
    index.handler(event, None)
    return Counter(lines_of(out))


def duckdb_tuples(sources: list[str], out: Path, **filters) -> Counter:
    result = duckdb_engine.run(sources, str(out), **filters)
    lines = lines_of(out)
    assert result.tuples_written == len(lines)
    return Counter(lines)


@pytest.mark.parametrize("ipv4_only", [False, True])
def test_workshop_dataset_gives_the_lambdas_tuples(tmp_path, ipv4_only):
    expected = lambda_tuples([str(WORKSHOP)], tmp_path / "lambda.csv", ipv4_only)
    got = duckdb_tuples([str(WORKSHOP)], tmp_path / "duckdb.csv", ipv4_only=ipv4_only)
    assert sum(expected.values()) > 30_000
    assert got == expected


@pytest.mark.parametrize("ipv4_only", [False, True])
def test_adversarial_layouts_give_the_lambdas_tuples(tmp_path, ipv4_only):
    """The ingest tests' adversarial records (reordered keys, nested look-alike fields, quotes,
    backslashes, escaped Insight type, service principals, ...), as the compact layout
    CloudTrail writes, pretty-printed, and uncompressed."""
    records = _adversarial_records()
    folder = tmp_path / "logs"
    folder.mkdir()
    compact = json.dumps({"Records": records}, separators=(",", ":")).encode()
    escaped = compact.replace(b'"AwsCloudTrailInsight"', b'"AwsCloudTrail\\u0049nsight"', 1)
    (folder / "compact.json.gz").write_bytes(gzip.compress(compact, mtime=0))
    (folder / "escaped.json.gz").write_bytes(gzip.compress(escaped, mtime=0))
    (folder / "pretty.json.gz").write_bytes(
        gzip.compress(json.dumps({"Records": records}, indent=2).encode(), mtime=0)
    )
    (folder / "plain.json").write_bytes(compact)
    expected = lambda_tuples([str(folder)], tmp_path / "lambda.csv", ipv4_only)
    assert sum(expected.values()) >= 4 * 8
    assert duckdb_tuples([str(folder)], tmp_path / "duckdb.csv", ipv4_only=ipv4_only) == expected


def test_messy_bucket_read_from_s3_gives_the_lambdas_tuples(monkeypatch, tmp_path):
    """Every kind of bad file the ingest tests put in a bucket (truncated gzip, not JSON, cut-off
    JSON, digest and Config files, empty deliveries, folder markers), read through s3://."""
    with aws(monkeypatch) as s3:
        messy_bucket(s3)
        expected = lambda_tuples(["s3://data-bucket/"], tmp_path / "lambda.csv", False)
        result = duckdb_engine.run(["s3://data-bucket/"], str(tmp_path / "duckdb.csv"))
    got = Counter(lines_of(tmp_path / "duckdb.csv"))
    assert got == expected and sum(got.values()) == 6
    # Skipped whole, never read in part: the truncated gzip, non-JSON and cut-off JSON files.
    assert result.files_skipped["unreadable"] == 3
    assert result.files_skipped["digest-file"] == 1
    assert result.files_skipped["config-writability-check"] == 1


# Addresses and principals: every rule of classify_address() and principal_of(), as strings
# real logs hold and the edges of Python's ipaddress.
ADDRESSES = [
    "203.0.113.10",
    " 203.0.113.10 ",
    "\t198.51.100.1\n",
    "\u00a0192.0.2.1\u3000",
    "0.0.0.0",
    "255.255.255.255",
    "256.1.1.1",
    "01.2.3.4",
    "1.2.3",
    "1.2.3.4.5",
    "1.2.3.4/32",
    "١.2.3.4",
    "AWS Internal",
    "aws internal",
    "",
    "   ",
    "ec2.amazonaws.com",
    "s3.amazon.com",
    "my-host.corp.example",
    "not an address",
    "2001:DB8:0:0:0:0:0:1",
    "2001:db8::1",
    "2001:0db8:0000:0000:0000:0000:0000:0001",
    "::",
    "::1",
    "1::",
    "1:2:3:4:5:6:7:8",
    "1:2:3:4:5:6:7::",
    "::2:3:4:5:6:7:8",
    "1:2:3:4:5:6:7:8:9",
    "1::2::3",
    ":1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7:",
    "12345::1",
    "fe80::1%eth0",
    "::ffff:198.51.100.5",
    "::FFFF:c633:6405",
    "0:0:0:0:0:ffff:1.2.3.4",
    "::ffff:0:0",
    "64:ff9b::192.0.2.33",
    "::1.2.3.4",
    "1:2:3:4:5:6:1.2.3.4",
    "1:2:3:4:5:6:7:1.2.3.4",
    "::ffff:1.2.3.04",
    "1:0:0:2:0:0:0:3",
    "1:0:0:2:0:0:3:4",
    "0:0:1:0:0:0:0:0",
    "1:0:1:0:1:0:1:0",
    "2001:db8:0:1:1:1:1:1",
    "g::1",
    "::1:",
    ":::",
    "1:2:3:4:5:6:7:8::",
    "::1:2:3:4:5:6:7:8",
    "2001:db8::1 ",
]
PRINCIPALS = [
    "AIDAUSER1",
    "AROAROLE:session",
    " AIDASPACE ",
    "AROA:x:y",
    ":nosession",
    "",
    "  ",
    "AIDA,COMMA",
    'AIDA"QUOTE',
    "AIDA\nNEWLINE",
    "AIDA\rRETURN",
    "\u2028AIDALS\u2029",
    "AIDA\\BACKSLASH",
    "AIDAÜNICODE",
]


def _random_address(rng: random.Random) -> str:
    groups = [f"{rng.choice([0, 0, 0, rng.randrange(65536)]):x}" for _ in range(8)]
    if rng.random() < 0.3:
        groups = [g.upper().zfill(rng.randrange(1, 5)) for g in groups]
    text = ":".join(groups)
    if rng.random() < 0.7:  # a '::' somewhere, over a run of any length (sometimes invalid)
        i, j = sorted(rng.sample(range(9), 2))
        text = ":".join(groups[:i]) + "::" + ":".join(groups[j:])
    if rng.random() < 0.2:
        text = text.rsplit(":", 2)[0] + ":" + ".".join(str(rng.randrange(256)) for _ in range(4))
    if rng.random() < 0.1:
        text = "::ffff:" + ".".join(str(rng.randrange(300)) for _ in range(4))
    return text


@pytest.mark.parametrize("ipv4_only", [False, True])
def test_address_and_principal_rules_match_the_lambda(tmp_path, ipv4_only):
    rng = random.Random(14)
    addresses = ADDRESSES + [_random_address(rng) for _ in range(3000)]
    records = [record(f"AIDAADDR{n}", ip) for n, ip in enumerate(addresses)]
    records += [record(p, "192.0.2.9") for p in PRINCIPALS]
    records += [record("AIDATYPED", 3232235777), record(12345, "192.0.2.9")]  # not strings
    records += [record("AIDAOBJECT", {"ip": "192.0.2.9"}), record(identity="AIDASTRING")]
    (tmp_path / "x.json.gz").write_bytes(gzip.compress(json.dumps({"Records": records}).encode()))
    expected = lambda_tuples([str(tmp_path / "x.json.gz")], tmp_path / "lambda.csv", ipv4_only)
    got = duckdb_tuples([str(tmp_path / "x.json.gz")], tmp_path / "duckdb.csv", ipv4_only=ipv4_only)
    assert got == expected
    assert any(":" in line.split(",", 1)[1] for line in got) != ipv4_only  # IPv6 both ways


def _log(records: list) -> bytes:
    return gzip.compress(json.dumps({"Records": records}, separators=(",", ":")).encode())


def test_account_region_and_day_filters(tmp_path):
    """The filters select partitions (the path), as partition projection does in Athena."""
    root = tmp_path / "AWSLogs"
    layout = {
        (ACCOUNT, "us-west-2", "2025/06/02"): "192.0.2.1",
        (ACCOUNT, "us-east-1", "2025/06/03"): "192.0.2.2",
        ("444455556666", "us-west-2", "2025/06/04"): "192.0.2.3",
        ("444455556666", "eu-west-1", "2025/06/05"): "192.0.2.4",
    }
    for (account, region, day), ip in layout.items():
        folder = root / account / "CloudTrail" / region / day
        folder.mkdir(parents=True)
        (folder / f"{account}_CloudTrail_{region}_x.json.gz").write_bytes(_log([record("P", ip)]))

    def ips(**filters) -> set[str]:
        out = tmp_path / "out.csv"
        out.unlink(missing_ok=True)
        return {line.split(",")[1] for line in duckdb_tuples([str(tmp_path)], out, **filters)}

    assert ips() == set(layout.values())
    assert ips(accounts="444455556666") == {"192.0.2.3", "192.0.2.4"}
    assert ips(regions="us-west-2,eu-west-1") == {"192.0.2.1", "192.0.2.3", "192.0.2.4"}
    assert ips(first_day="2025-06-03", last_day="2025/06/04") == {"192.0.2.2", "192.0.2.3"}
    assert ips(accounts=[ACCOUNT], regions="us-east-1", last_day="2025-06-03") == {"192.0.2.2"}


@pytest.mark.parametrize(
    "filters",
    [
        {"accounts": "12345"},
        {"accounts": "111122223333,x'"},
        {"regions": "us-west-2'); DROP"},
        {"first_day": "2025-6-1"},
        {"first_day": "2025-06-05", "last_day": "2025-06-01"},
    ],
)
def test_bad_filters_are_refused_before_any_query(filters):
    with pytest.raises(ValueError):
        query_parameters(**filters)


def test_parameters_fill_every_placeholder_in_order():
    values = query_parameters(
        first_day="2025-06-01", accounts="111122223333", regions="us-west-2", ipv4_only=True
    )
    for engine, dialect in (("athena", "trino"), ("duckdb", "duckdb")):
        parsed = sqlglot.parse_one(tuple_query(engine), read=dialect)
        assert len(list(parsed.find_all(sqlglot.exp.Placeholder))) == len(values)
    assert as_literals(values)[0] == "'2025/06/01'" and values[-1] == "true"


def test_demo_check_compares_with_what_the_lambda_wrote(monkeypatch, caplog):
    from secml.errors import SecmlError
    from secml.sql.demo import duckdb_matches_lambda

    with aws(monkeypatch) as s3:
        messy_bucket(s3)
        index.handler({}, None)
        body = s3.get_object(Bucket="tuples-bucket", Key="train/cloudtrail_tuples.csv")["Body"]
        pairs = [tuple(line.split(",")) for line in body.read().decode().splitlines()]
        env = {"INPUT_BUCKET": "data-bucket", "INPUT_PREFIX": "", "IPV4_ONLY": "false"}
        caplog.clear()
        with caplog.at_level(logging.INFO):
            assert "6 tuples" in duckdb_matches_lambda(env, pairs)
        # the Lambda step reported the skipped files; the check repeats none of them
        assert not [r for r in caplog.records if "skipped file" in r.getMessage()]
        with pytest.raises(SecmlError, match="1 extra, 1 missing"):
            duckdb_matches_lambda(env, [*pairs[:-1], ("AIDAOTHER", "192.0.2.99")])


def test_cli_engine_duckdb(tmp_path, capsys):
    from secml.cli import main

    out = tmp_path / "t.csv"
    assert (
        main(["tuples", "cloudtrail", "--engine", "duckdb", str(WORKSHOP), "--out", str(out)]) == 0
    )
    assert "tuples from 606 files (duckdb)" in capsys.readouterr().out
    assert (
        main(
            ["tuples", "cloudtrail", "--engine", "duckdb", str(tmp_path / "no"), "--out", str(out)]
        )
        == 2
    )
    assert "secml tuples: error: no such file or folder" in capsys.readouterr().err


def test_records_that_are_not_objects_are_skipped_alone(tmp_path):
    """A Records entry that is not a JSON object gives no tuple and takes no other record with
    it (DuckDB's typed read fails on it; the engine reads the run again as generic JSON). The
    reference is get_tuple() itself: the handler's fast path currently raises on such a file."""
    records = [record("AIDAA", "192.0.2.1"), "not a record", 7, None, [1], record("AIDAB", "::1")]
    (tmp_path / "x.json.gz").write_bytes(_log(records))
    expected = Counter(
        f"{p},{ip}" for r in records if (pair := index.get_tuple(r)) is not None for p, ip in [pair]
    )
    assert expected == Counter(["AIDAA,192.0.2.1", "AIDAB,::1"])
    assert duckdb_tuples([str(tmp_path / "x.json.gz")], tmp_path / "out.csv") == expected
