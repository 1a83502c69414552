"""The synthetic dataset: deterministic, committed preset reproducible, the model learnable."""

from __future__ import annotations

import csv
import gzip
import ipaddress
import json
import zlib
from collections import Counter
from pathlib import Path

import pytest

from secml.cli import main
from secml.datagen.generate import Preset, generate

ROOT = Path(__file__).resolve().parents[1]
WORKSHOP = ROOT / "data" / "workshop"
# The zlib the committed preset was compressed with; another zlib may pick other (equally
# valid) deflate encodings, so the compressed bytes are only compared under this one.
COMMITTED_ZLIB = "1.2.13"
TINY = Preset("tiny", days=7, teams=1, file_minutes=15, compresslevel=1)


def files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_committed_workshop_preset_is_reproduced_byte_for_byte(tmp_path):
    assert main(["generate", "--preset", "workshop", "--out", str(tmp_path / "ws")]) == 0
    fresh, committed = files(tmp_path / "ws"), files(WORKSHOP)
    assert sorted(fresh) == sorted(committed)
    for name, blob in committed.items():
        if name.endswith(".gz"):
            assert gzip.decompress(fresh[name]) == gzip.decompress(blob), name
            if zlib.ZLIB_RUNTIME_VERSION == COMMITTED_ZLIB:
                assert fresh[name] == blob, name
        else:
            assert fresh[name] == blob, name


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    a = generate(TINY, tmp_path / "a", seed=7)
    generate(TINY, tmp_path / "b", seed=7)
    generate(TINY, tmp_path / "c", seed=8)
    assert files(tmp_path / "a") == files(tmp_path / "b")
    assert (tmp_path / "a" / "truth.csv").read_bytes() != (
        tmp_path / "c" / "truth.csv"
    ).read_bytes()
    assert a.records > 15_000 and a.files > 700  # 15-minute deliveries


def test_gzip_members_carry_no_name_or_mtime():
    blob = next((WORKSHOP / "cloudtrail").rglob("*.json.gz")).read_bytes()
    assert blob[3] == 0 and blob[4:8] == b"\0\0\0\0"  # FLG: no FNAME; MTIME zero


def test_generate_refuses_a_non_empty_folder(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f").write_text("keep me")
    assert main(["generate", "--out", str(tmp_path / "x")]) == 2
    assert "not empty" in capsys.readouterr().err


def test_layout_and_record_fields():
    logs = sorted((WORKSHOP / "cloudtrail" / "AWSLogs").glob("*/CloudTrail/*/*/*/*/*.json.gz"))
    assert len(logs) > 500
    acct = logs[0].parts[-7]
    assert logs[0].name.startswith(f"{acct}_CloudTrail_")
    records = [r for p in logs[:50] for r in json.loads(gzip.decompress(p.read_bytes()))["Records"]]
    base = {
        "eventVersion",
        "userIdentity",
        "eventTime",
        "eventSource",
        "eventName",
        "awsRegion",
        "sourceIPAddress",
        "userAgent",
        "requestParameters",
        "responseElements",
        "eventID",
        "readOnly",
        "eventType",
        "managementEvent",
        "recipientAccountId",
        "eventCategory",
    }
    for r in records:
        assert base <= set(r), set(r) ^ base
    everything = [r for p in logs for r in json.loads(gzip.decompress(p.read_bytes()))["Records"]]
    assert 40_000 < len(everything) < 150_000
    kinds = Counter(r["userIdentity"]["type"] for r in everything)
    assert {"IAMUser", "AssumedRole", "AWSService", "Root"} <= set(kinds)
    assert any(r["eventName"] == "ConsoleLogin" for r in everything)
    assert any(r["sourceIPAddress"] == "AWS Internal" for r in everything)
    assert any(":" in r["sourceIPAddress"] for r in everything)  # some IPv6
    assert (WORKSHOP / "guardduty" / "findings.json").stat().st_size < 200_000
    total = sum(p.stat().st_size for p in WORKSHOP.rglob("*") if p.is_file())
    assert total < 7_000_000


@pytest.fixture(scope="module")
def training_tuples(tmp_path_factory):
    out = tmp_path_factory.mktemp("t") / "ct.csv"
    assert main(["tuples", "cloudtrail", str(WORKSHOP / "cloudtrail"), "--out", str(out)]) == 0
    return Counter(tuple(line.split(",")) for line in out.read_text().splitlines())


def test_truth_csv_and_the_learnable_model(training_tuples):
    rows = list(csv.DictReader((WORKSHOP / "truth.csv").open()))
    assert list(rows[0]) == ["finding_id", "finding_type", "label", "principal", "ip", "scenario"]
    findings = {
        f["Id"]: f for f in json.loads((WORKSHOP / "guardduty" / "findings.json").read_text())
    }
    assert len(rows) == len(findings) and {r["label"] for r in rows} == {"malicious", "benign"}
    assert sum(r["label"] == "malicious" and r["principal"] != "" for r in rows) >= 6
    assert sum(r["label"] == "benign" for r in rows) >= 10
    ips_of = {}
    for (p, ip), n in training_tuples.items():
        ips_of.setdefault(p, Counter())[ip] += n
    for r in rows:
        if not r["principal"]:
            continue
        used = ips_of[r["principal"]]
        if r["label"] == "malicious":
            # only the attack itself came from there: never the victim's own network
            attack = ipaddress.ip_network(f"{r['ip']}/16", strict=False)
            mine = [ip for ip in used if ":" not in ip and ipaddress.ip_address(ip) in attack]
            assert set(mine) <= {x["ip"] for x in rows if x["principal"] == r["principal"]}, r
            assert used[r["ip"]] <= 30, r
        else:
            # an address the principal uses: more events than the finding itself covers
            count = findings[r["finding_id"]]["Service"]["Count"]
            assert used[r["ip"]] > count, r
