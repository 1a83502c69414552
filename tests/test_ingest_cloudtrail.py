"""CloudTrail ingest Lambda: against moto, with every kind of bad input, both deploy modes."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from lambda_src import cloudtrail_logs as logs
from lambda_src import ingest_common
from lambda_src.cloudtrail_ingest import index
from lambda_src.staging import stage_function
from tests.ingest_support import (
    ACCOUNT,
    aws,
    ct_key,
    keys,
    load_staged,
    log_bytes,
    read_output,
    record,
    uncomment_after_todo,
)

WORKSHOP = Path(__file__).resolve().parents[1] / "data" / "workshop" / "cloudtrail"

SERVICE = {"type": "AWSService", "invokedBy": "ec2.amazonaws.com"}
ROLE = {
    "type": "AssumedRole",
    "principalId": "AROAEXAMPLEROLE00001:i-0abc",
    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/web/i-0abc",
    "accountId": ACCOUNT,
    "accessKeyId": "ASIAEXAMPLE000000001",
    "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLEROLE00001"}},
}


def messy_bucket(s3) -> None:
    """One of everything real buckets contain."""
    put = s3.put_object
    good = [
        record("AIDAUSER1", "203.0.113.10"),
        record("AIDAUSER1", "203.0.113.10"),  # duplicates are kept: one line per event
        record(identity=ROLE, ip="52.34.1.2"),
        record("AIDAUSER2", "2001:DB8:0:0:0:0:0:1"),  # IPv6, not canonical as written
        record(identity=SERVICE, ip="ec2.amazonaws.com"),
        record("AIDAUSER1", "AWS Internal"),
        record("AIDAUSER1", "cloudformation.amazonaws.com"),
        record("AIDAUSER1", "my-host.corp.example"),
        record("AIDAUSER1", None),  # sourceIPAddress: null
        record(identity={"type": "IAMUser", "arn": "arn:aws:iam::1:user/x"}),  # no principalId
    ]
    missing_ip = record("AIDAUSER3")
    del missing_ip["sourceIPAddress"]
    no_identity = record("AIDAUSER3")
    del no_identity["userIdentity"]
    insight = {
        "eventVersion": "1.07",
        "eventTime": "2025-06-02T10:00:00Z",
        "awsRegion": "us-west-2",
        "eventID": "x",
        "eventType": "AwsCloudTrailInsight",
        "recipientAccountId": ACCOUNT,
        "sharedEventID": "y",
        "insightDetails": {"state": "Start", "eventName": "RunInstances"},
        "eventCategory": "Insight",
    }
    put(Bucket="data-bucket", Key=ct_key(1), Body=log_bytes(good + [missing_ip, no_identity]))
    put(Bucket="data-bucket", Key=ct_key(2), Body=log_bytes([insight]))
    # Pretty-printed (not CloudTrail's layout): parsed whole, same answer.
    put(
        Bucket="data-bucket",
        Key=ct_key(3),
        Body=log_bytes([record("AIDAUSER4", "198.51.100.7")], compact=False),
    )
    # Uncompressed JSON is read too.
    put(
        Bucket="data-bucket",
        Key=ct_key(4).removesuffix(".gz"),
        Body=log_bytes([record("AIDAUSER5", "198.51.100.8")], compress=False),
    )
    # A truncated gzip whose first part holds good records: contributes nothing.
    whole = log_bytes([record("AIDATRUNCATED", "192.0.2.1")] * 200)
    put(Bucket="data-bucket", Key=ct_key(5), Body=whole[: len(whole) // 2])
    # Gzipped but not JSON, and JSON cut off part-way inside a valid gzip.
    put(Bucket="data-bucket", Key=ct_key(6), Body=gzip.compress(b"<html>503 Slow Down</html>"))
    cut = json.dumps({"Records": [record("AIDACUT", "192.0.2.2")] * 3}, separators=(",", ":"))
    put(Bucket="data-bucket", Key=ct_key(7), Body=gzip.compress(cut[:-40].encode()))
    # Empty delivery, zero-byte object, digest file, AWS Config's check file, folder marker.
    put(Bucket="data-bucket", Key=ct_key(8), Body=log_bytes([]))
    put(Bucket="data-bucket", Key=ct_key(9), Body=b"")
    put(
        Bucket="data-bucket",
        Key=f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-west-2/2025/06/02/"
        f"{ACCOUNT}_CloudTrail-Digest_us-west-2_trail_us-west-2_20250602T100000Z.json.gz",
        Body=gzip.compress(json.dumps({"awsAccountId": ACCOUNT, "logFiles": []}).encode()),
    )
    put(Bucket="data-bucket", Key=f"AWSLogs/{ACCOUNT}/ConfigWritabilityCheckFile", Body=b"check")
    put(Bucket="data-bucket", Key=f"AWSLogs/{ACCOUNT}/CloudTrail/", Body=b"")
    # A JSON document that is not a CloudTrail log.
    put(Bucket="data-bucket", Key=ct_key(10), Body=gzip.compress(b'{"hello": "world"}'))


EXPECTED = [
    ("AIDAUSER1", "203.0.113.10"),
    ("AIDAUSER1", "203.0.113.10"),
    ("AROAEXAMPLEROLE00001", "52.34.1.2"),
    ("AIDAUSER2", "2001:db8::1"),
    ("AIDAUSER4", "198.51.100.7"),
    ("AIDAUSER5", "198.51.100.8"),
]


def test_solution_handler_skips_counts_and_carries_on(monkeypatch, capsys):
    with aws(monkeypatch) as s3:
        messy_bucket(s3)
        result = index.handler({}, None)
        assert sorted(read_output(s3)) == sorted(EXPECTED)
    assert result["output"] == "s3://tuples-bucket/train/cloudtrail_tuples.csv"
    assert result["tuples_written"] == len(EXPECTED)
    assert result["files_read"] == 4  # the good file, the Insight file, pretty, uncompressed
    assert result["records"] == 12 + 1 + 1 + 1
    assert result["skipped"] == {
        "aws-internal": 1,
        "aws-service-address": 1,
        "aws-service-principal": 1,
        "hostname": 1,
        "insight-event": 1,
        "no-principal-id": 1,
        "no-source-ip": 2,
        "no-user-identity": 1,
    }
    assert result["files_skipped"] == {
        "bad-gzip": 1,
        "config-writability-check": 1,
        "digest-file": 1,
        "empty-file": 1,
        "folder-marker": 1,
        "no-records": 1,
        "not-a-cloudtrail-log": 1,
        "not-json": 2,
    }
    assert "AIDATRUNCATED" not in capsys.readouterr().out.replace("principal=", "")


def test_ipv4_only_drops_ipv6_and_counts_it(monkeypatch):
    with aws(monkeypatch) as s3:
        messy_bucket(s3)
        monkeypatch.setenv("IPV4_ONLY", "true")
        result = index.handler({}, None)
        assert ("AIDAUSER2", "2001:db8::1") not in read_output(s3)
    assert result["skipped"]["ipv6-excluded"] == 1


def test_reads_every_object_of_a_prefix_past_1000(monkeypatch):
    """The original read only the first 1,000 keys. Here 1,000 digest files sort first (they
    are skipped by name, so no GET each) and the logs come after them, on the second page."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    with aws(monkeypatch, prefix="AWSLogs/") as s3:
        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]  # moto's own store: fast setup
        for n in range(1000):
            backend.put_object(
                "data-bucket",
                f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-west-2/"
                f"2025/06/02/{ACCOUNT}_CloudTrail-Digest_{n:06d}.json.gz",
                b"{}",
            )
        for n in range(6):
            s3.put_object(
                Bucket="data-bucket",
                Key=ct_key(n),
                Body=log_bytes([record(f"AIDAU{n}", f"198.51.100.{n + 1}")] * 2),
            )
        s3.put_object(
            Bucket="data-bucket", Key="elsewhere/" + ct_key(1), Body=log_bytes([record()])
        )
        result = index.handler({}, None)
        assert sorted(set(read_output(s3))) == [
            (f"AIDAU{n}", f"198.51.100.{n + 1}") for n in range(6)
        ]
    assert result["files_read"] == 6 and result["tuples_written"] == 12
    assert result["files_skipped"] == {"digest-file": 1000}


def test_a_failed_run_leaves_no_output_behind(monkeypatch):
    with aws(monkeypatch) as s3:
        for n in range(3):
            s3.put_object(Bucket="data-bucket", Key=ct_key(n), Body=log_bytes([record()]))
        calls, real = [], logs.csv_lines

        def failing(*args, **kw):
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("Lambda ran out of time")
            return real(*args, **kw)

        monkeypatch.setattr(logs, "csv_lines", failing)
        monkeypatch.setenv("INGEST_WORKERS", "1")
        with pytest.raises(RuntimeError):
            index.handler({}, None)
        assert keys(s3) == []


def test_missing_configuration_is_a_clear_error(monkeypatch):
    with aws(monkeypatch):
        monkeypatch.delenv("INPUT_BUCKET")
        with pytest.raises(ValueError, match="INPUT_BUCKET"):
            index.handler({}, None)


def test_get_tuple_is_pure_and_total():
    assert index.get_tuple(record(identity=ROLE, ip="52.34.1.2")) == (
        "AROAEXAMPLEROLE00001",
        "52.34.1.2",
    )
    assert index.get_tuple(record(ip="::FFFF:198.51.100.1")) == (
        "AIDAEXAMPLEUSER00001",
        "198.51.100.1",
    )
    for bad in (
        None,
        [],
        "text",
        {},
        record(identity="nope"),
        record("a,b", "192.0.2.1"),
        record(ip=12345),
        record(ip="fe80::1%eth0"),
    ):
        assert index.get_tuple(bad) is None


# ---- exercise mode and the attendee's edit --------------------------------------------------


def test_exercise_mode_prints_records_and_writes_no_tuples(monkeypatch, tmp_path, capsys):
    exercise = load_staged("cloudtrail_ingest", solutions=False, out_dir=tmp_path)
    with aws(monkeypatch) as s3:
        messy_bucket(s3)
        result = exercise.handler({}, None)
        assert keys(s3) == []
    out = capsys.readouterr().out
    assert "DescribeInstances principal=AIDAUSER1 ip=203.0.113.10" in out
    assert result["tuples_written"] == 0 and result["output"] is None
    assert result["records"] == 15


def test_the_documented_edit_turns_the_exercise_into_the_solution(monkeypatch, tmp_path):
    edited = load_staged(
        "cloudtrail_ingest",
        solutions=False,
        out_dir=tmp_path,
        edit=lambda text: uncomment_after_todo(text, "TODO (exercise 2.1, step 3)"),
    )
    with aws(monkeypatch) as s3:
        messy_bucket(s3)
        edited.handler({}, None)
        attendee = read_output(s3)
        s3.delete_object(Bucket="tuples-bucket", Key="train/cloudtrail_tuples.csv")
        index.handler({}, None)
        assert attendee == read_output(s3)
    assert sorted(attendee) == sorted(EXPECTED)


def test_staged_solution_runs_as_deployed(monkeypatch, tmp_path):
    solution = load_staged("cloudtrail_ingest", solutions=True, out_dir=tmp_path)
    with aws(monkeypatch) as s3:
        messy_bucket(s3)
        assert solution.handler({}, None)["tuples_written"] == len(EXPECTED)
    assert ingest_common is not solution.ingest_common  # the staged copy, not the source


def _adversarial_records() -> list:
    """Layouts a scan over the text could get wrong; the full parse is the reference."""
    reordered = record("AIDAREORDER", "192.0.2.20")
    reordered = {"userIdentity": reordered.pop("userIdentity"), **reordered}  # eventVersion 2nd
    odd_identity = record("AIDAODD", "192.0.2.21")
    odd_identity["userIdentity"] = {"arn": "arn:x", "type": "IAMUser", "principalId": "AIDAODD"}
    missing_ip = record("AIDAMISSING")
    del missing_ip["sourceIPAddress"]
    nested = record(
        "AIDANESTED",
        "192.0.2.22",
        requestParameters={
            "sourceIPAddress": "198.51.100.99",
            "userIdentity": {"type": "IAMUser", "principalId": "AIDAINNER"},
            "items": [{"principalId": "AIDAINNER2"}, {"sourceIPAddress": "198.51.100.98"}],
        },
    )
    role = record(identity=ROLE, ip="52.34.1.2")  # sessionContext holds its own principalId
    insight_with_identity = record("AIDAINSIGHT", "192.0.2.23", eventType="AwsCloudTrailInsight")
    escaped_type = record("AIDAESCTYPE", "192.0.2.24")
    escaped_type["eventType"] = "AwsCloudTrailInsight"  # written with a \\u escape below
    service_with_ip = record(identity={"type": "AWSService", "invokedBy": "s3.amazonaws.com"})
    service_odd = record(identity={"type": "AWSService", "principalId": "AIDASVC"}, ip="192.0.2.25")
    # eventTime after eventSource: a scan from principalId to the first '},"eventTime":"' would
    # run on into the next record and take its address
    late_time = record("AIDALATETIME", "192.0.2.29")
    late_time = {k: late_time[k] for k in ("eventVersion", "userIdentity", "eventSource")} | (
        late_time
    )
    return [
        late_time,
        record("AIDAPLAIN", "203.0.113.1"),
        reordered,
        odd_identity,
        record('AIDA"QUOTE', "192.0.2.26"),
        record("AIDA\\BACKSLASH", "192.0.2.27"),
        missing_ip,
        nested,
        role,
        insight_with_identity,
        escaped_type,
        service_with_ip,
        service_odd,
        record("AIDAINTERNAL", "AWS Internal"),
        record("AIDAHOST", "my-host.corp.example"),
        record("AIDAV6", "2001:DB8::0:1"),
        record("AIDAMAPPED", "::ffff:198.51.100.5"),
        record("AIDA,COMMA", "192.0.2.28"),
        record("AIDANULL", None),
        record("AIDAPLAIN", "203.0.113.1"),
    ]


@pytest.mark.parametrize("start", range(0, 20, 3))
@pytest.mark.parametrize("ipv4_only", [False, True])
def test_scan_matches_full_parse_on_adversarial_layouts(tmp_path, start, ipv4_only):
    """Each adversarial record, alone among plain ones and all together: the handler's output
    and counts equal get_tuple() over json.loads of the same file."""
    odd = _adversarial_records()
    plain = [record(f"AIDAP{n}", f"198.51.100.{n}") for n in range(1, 6)]
    layouts = [plain[:2] + [r] + plain[2:] for r in odd[start : start + 3]]
    layouts += [[r] + plain for r in odd[start : start + 3]] + [odd + plain]  # first in file
    for n, records in enumerate(layouts):
        text = json.dumps({"Records": records}, separators=(",", ":"))
        text = (
            text.replace(
                '"eventType":"AwsCloudTrailInsight","managementEvent":true,"recipient'
                'AccountId":"111122223333","eventCategory":"Management","tlsDetails"',
                '"eventType":"AwsCloudTrail\\u0049nsight","managementEvent":true,'
                '"recipientAccountId":"111122223333","eventCategory":"Management",'
                '"tlsDetails"',
                1,
            )
            if n == len(layouts) - 1
            else text
        )
        data = text.encode()
        folder = tmp_path / f"l{n}"
        folder.mkdir()
        (folder / "x.json.gz").write_bytes(gzip.compress(data, mtime=0))
        expected, reasons = [], Counter()
        for rec in json.loads(data)["Records"]:
            pair = index.get_tuple(rec, ipv4_only=ipv4_only, skipped=reasons)
            if pair is not None:
                expected.append(pair)
        out = tmp_path / f"l{n}.csv"
        event = {"sources": [str(folder)], "output": str(out), "print_limit": 0}
        result = index.handler({**event, "ipv4_only": ipv4_only}, None)
        lines = out.read_text().splitlines() if out.exists() else []
        assert lines == [f"{p},{ip}" for p, ip in expected]
        assert result["skipped"] == dict(sorted(reasons.items()))
        assert result["records"] == len(records)


def test_the_attendees_get_tuple_is_what_runs(monkeypatch, tmp_path):
    """Exercise 2.1 as the guide has it, applied as text to the staged file: the attendee's
    get_tuple() runs once per record of the workshop's logs and its answers are the output,
    the solution's tuples and counts exactly; a change to get_tuple() shows in the output."""
    monkeypatch.setenv("INGEST_WORKERS", "1")

    def uncomment(text: str) -> str:
        return uncomment_after_todo(text, "TODO (exercise 2.1, step 3)")

    edited = load_staged("cloudtrail_ingest", solutions=False, out_dir=tmp_path, edit=uncomment)
    calls = []
    real = edited.get_tuple
    monkeypatch.setattr(edited, "get_tuple", lambda r, **kw: calls.append(1) or real(r, **kw))
    event = {"sources": [str(WORKSHOP)], "print_limit": 0, "ipv4_only": True}
    attendee = edited.handler({**event, "output": str(tmp_path / "a.csv")}, None)
    solution = index.handler({**event, "output": str(tmp_path / "s.csv")}, None)
    assert len(calls) == attendee["records"] == solution["records"] > 40_000
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "s.csv").read_bytes()
    assert {k: v for k, v in attendee.items() if k != "json_backend"} == {
        **{k: v for k, v in solution.items() if k != "json_backend"},
        "output": str(tmp_path / "a.csv"),
    }

    def lower_case(text: str) -> str:
        assert "            return principal, ip\n" in text
        return uncomment(text).replace("return principal, ip", "return principal.lower(), ip")

    changed = load_staged("cloudtrail_ingest", solutions=False, out_dir=tmp_path, edit=lower_case)
    changed.handler({**event, "output": str(tmp_path / "c.csv")}, None)
    expected = (tmp_path / "s.csv").read_text().splitlines()
    assert (tmp_path / "c.csv").read_text().splitlines() == [
        f"{p.lower()},{ip}" for p, ip in (line.split(",") for line in expected)
    ]


def test_todo_comments_name_the_guides_steps(tmp_path):
    """Each TODO in the staged exercise files names an exercise step of docs/workshop.md that
    tells the attendee about that TODO."""
    guide = (Path(__file__).resolve().parents[1] / "docs" / "workshop.md").read_text()
    todos = []
    for name in ("cloudtrail_ingest", "guardduty_ingest"):
        folder = stage_function(name, solutions=False, out_dir=tmp_path)
        todos += re.findall(
            r"TODO \(exercise (\d\.\d), step (\d+)\)", (folder / "index.py").read_text()
        )
    assert sorted(todos) == [("1.2", "4"), ("2.1", "3"), ("2.2", "1")]
    for exercise, step in todos:
        section = guide.split(f"\n### {exercise} ", 1)[1].split("\n#", 1)[0]
        steps = re.split(r"\n(?=\d+\. )", section)
        text = next(s for s in steps if s.startswith(f"{step}. "))
        assert "TODO" in text, (exercise, step, text)
