"""GuardDuty ingest Lambda: every container, every action type, samples, the live detector."""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from lambda_src import guardduty_findings as gd
from lambda_src.guardduty_ingest import index
from tests.ingest_support import aws, keys, load_staged, read_output, uncomment_after_todo

WORKSHOP = Path(__file__).resolve().parents[1] / "data" / "workshop"
OUT_KEY = "infer/guardduty_tuples.csv"


def remote(ip: str, version: int = 4) -> dict:
    return {
        "IpAddressV4" if version == 4 else "IpAddressV6": ip,
        "Organization": {"Asn": "14061", "Isp": "DigitalOcean"},
    }


def finding(fid: str, principal: str | None, action: dict, *, sample=False) -> dict:
    """A finding in the GetFindings (PascalCase) shape."""
    resource = {"ResourceType": "Instance", "InstanceDetails": {"InstanceId": "i-0abc"}}
    if principal is not None:
        resource = {
            "ResourceType": "AccessKey",
            "AccessKeyDetails": {
                "AccessKeyId": "AKIAEXAMPLE",
                "PrincipalId": principal,
                "UserName": "dev",
                "UserType": "IAMUser",
            },
        }
    service = {"Action": action, "Count": 1, "ServiceName": "guardduty"}
    if sample:
        service["AdditionalInfo"] = {"Value": '{"sample":true}', "Type": "default"}
    return {
        "Id": fid,
        "Type": "Recon:IAMUser/MaliciousIPCaller",
        "Severity": 5.0,
        "UpdatedAt": "2025-06-10T10:00:00.000Z",
        "Resource": resource,
        "Service": service,
    }


def api_call(ip, version=4):
    return {
        "ActionType": "AWS_API_CALL",
        "AwsApiCallAction": {"Api": "ListUsers", "RemoteIpDetails": remote(ip, version)},
    }


def camel(obj):
    """The same finding as EventBridge and S3 exports spell it (camelCase keys)."""
    if isinstance(obj, dict):
        return {k[0].lower() + k[1:]: camel(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [camel(v) for v in obj]
    return obj


FINDINGS = [
    finding("f1", "AIDAUSER1", api_call("167.99.1.2")),
    finding("f2", "AROAROLE1:i-0abc", api_call("2A03:B0C0:0003:00D0:0000:0000:0DE3:6001", 6)),
    finding(
        "f3",
        "AIDAUSER3",
        {
            "ActionType": "PORT_PROBE",
            "PortProbeAction": {
                "PortProbeDetails": [
                    {"RemoteIpDetails": remote("45.155.205.1")},
                    {"RemoteIpDetails": remote("45.155.205.2")},
                    {"RemoteIpDetails": remote("45.155.205.1")},
                ]
            },
        },
    ),
    finding(
        "f4",
        "AIDAUSER4",
        {
            "ActionType": "NETWORK_CONNECTION",
            "NetworkConnectionAction": {"RemoteIpDetails": remote("185.220.101.5")},
        },
    ),
    finding(
        "f5",
        "AIDAUSER5",
        {
            "ActionType": "KUBERNETES_API_CALL",
            "KubernetesApiCallAction": {"RemoteIpDetails": remote("51.75.1.1")},
        },
    ),
    finding(
        "f6",
        "AIDAUSER6",
        {
            "ActionType": "RDS_LOGIN_ATTEMPT",
            "RdsLoginAttemptAction": {"RemoteIpDetails": remote("95.216.1.1")},
        },
    ),
    finding("f7", None, api_call("45.9.148.1")),  # no access key: nothing to score
    finding("f8", "AIDAUSER8", {"ActionType": "DNS_REQUEST", "DnsRequestAction": {"Domain": "x"}}),
    finding("f9", "AIDAUSER9", api_call("203.0.113.9"), sample=True),
    finding("f10", "AIDAUSER10", api_call("AWS Internal")),
]
EXPECTED = [
    ("AIDAUSER1", "167.99.1.2"),
    ("AROAROLE1", "2a03:b0c0:3:d0::de3:6001"),
    ("AIDAUSER3", "45.155.205.1"),
    ("AIDAUSER3", "45.155.205.2"),
    ("AIDAUSER4", "185.220.101.5"),
    ("AIDAUSER5", "51.75.1.1"),
    ("AIDAUSER6", "95.216.1.1"),
]
SKIPPED = {"aws-internal": 1, "no-access-key": 1, "no-remote-ip": 1, "sample-finding": 1}


def put_every_container(s3) -> None:
    put = s3.put_object
    put(Bucket="data-bucket", Key="gd/array.json", Body=json.dumps(FINDINGS[:3]))  # the workshop's
    export = "\n".join(json.dumps(camel(f)) for f in FINDINGS[3:6]) + "\n"
    put(
        Bucket="data-bucket",
        Key="gd/AWSLogs/1/GuardDuty/us-west-2/2025/06/10/x.jsonl.gz",
        Body=gzip.compress(export.encode()),
    )
    event = {
        "version": "0",
        "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty",
        "detail": camel(FINDINGS[6]),
    }
    put(Bucket="data-bucket", Key="gd/event.json", Body=json.dumps(event))
    put(Bucket="data-bucket", Key="gd/response.json", Body=json.dumps({"Findings": FINDINGS[7:9]}))
    put(Bucket="data-bucket", Key="gd/single.json", Body=json.dumps(FINDINGS[9]))
    put(Bucket="data-bucket", Key="gd/broken.json", Body=json.dumps(FINDINGS)[:-30])
    put(Bucket="data-bucket", Key="gd/truncated.json.gz", Body=gzip.compress(b"[" * 5000)[:40])
    put(Bucket="data-bucket", Key="gd/empty.json", Body=b"[]")


def test_every_container_and_action_type(monkeypatch):
    with aws(monkeypatch, prefix="gd/") as s3:
        put_every_container(s3)
        result = index.handler({}, None)
        assert sorted(read_output(s3, key=OUT_KEY)) == sorted(EXPECTED)
    assert result["findings"] == len(FINDINGS)
    assert result["skipped"] == SKIPPED
    assert result["files_skipped"] == {"bad-gzip": 1, "no-findings": 1, "not-json": 1}


def test_samples_on_request_and_ipv4_only(monkeypatch):
    with aws(monkeypatch, prefix="gd/") as s3:
        put_every_container(s3)
        monkeypatch.setenv("INCLUDE_SAMPLES", "true")
        monkeypatch.setenv("IPV4_ONLY", "true")
        result = index.handler({}, None)
        out = read_output(s3, key=OUT_KEY)
    assert ("AIDAUSER9", "203.0.113.9") in out
    assert not any(":" in ip for _, ip in out)
    assert result["skipped"]["ipv6-excluded"] == 1


def test_tuples_from_finding_either_casing():
    for f in FINDINGS[:6]:
        assert index.tuples_from_finding(f) == index.tuples_from_finding(camel(f))
    assert index.tuples_from_finding(FINDINGS[2]) == [
        ("AIDAUSER3", "45.155.205.1"),
        ("AIDAUSER3", "45.155.205.2"),
    ]
    assert index.tuples_from_finding(FINDINGS[1], ipv4_only=True) == []
    assert gd.is_sample(camel(FINDINGS[8]))
    assert gd.is_sample({"service": {"additionalInfo": {"sample": True}}})
    for junk in ({}, {"Resource": "x"}, {"Service": {"Action": []}}):
        assert index.tuples_from_finding(junk) == []


def test_workshop_findings_match_truth_csv():
    import csv

    findings = json.loads((WORKSHOP / "guardduty" / "findings.json").read_text())
    rows = {r["finding_id"]: r for r in csv.DictReader((WORKSHOP / "truth.csv").open())}
    assert {f["Id"] for f in findings} == set(rows)
    for f in findings:
        row = rows[f["Id"]]
        expected = [(row["principal"], row["ip"])] if row["principal"] else []
        assert index.tuples_from_finding(f) == expected, row


def test_live_detector_pages_and_batches_of_50(monkeypatch):
    """moto has no GuardDuty findings API: botocore's Stubber checks each call against the
    service model instead (the handler still makes real boto3 calls)."""
    client = boto3.client("guardduty", region_name="us-west-2")
    stub = Stubber(client)
    ids = [f"{n:032x}" for n in range(120)]
    stub.add_response("list_detectors", {"DetectorIds": ["d1"]})
    stub.add_response(
        "list_findings", {"FindingIds": ids[:70], "NextToken": "t"}, {"DetectorId": "d1"}
    )
    stub.add_response(
        "list_findings", {"FindingIds": ids[70:]}, {"DetectorId": "d1", "NextToken": "t"}
    )
    for start in (0, 50, 100):
        batch = ids[start : start + 50]
        found = []
        for n, fid in enumerate(batch):
            f = copy.deepcopy(FINDINGS[0])
            f.update(
                Id=fid,
                AccountId="1",
                Arn="a",
                CreatedAt="c",
                Partition="aws",
                Region="r",
                SchemaVersion="2.0",
                Type="t",
                UpdatedAt="u",
            )
            f["Resource"]["AccessKeyDetails"]["PrincipalId"] = f"AIDA{start + n}"
            f["Service"]["AdditionalInfo"] = {"Value": json.dumps({"sample": (start + n) % 2 == 0})}
            found.append(f)
        stub.add_response(
            "get_findings", {"Findings": found}, {"DetectorId": "d1", "FindingIds": batch}
        )
    with aws(monkeypatch) as s3:
        monkeypatch.delenv("INPUT_BUCKET")
        real_client = boto3.client
        monkeypatch.setattr(
            boto3,
            "client",
            lambda name, *a, **k: client if name == "guardduty" else real_client(name, *a, **k),
        )
        with stub:
            result = index.handler({}, None)
        stub.assert_no_pending_responses()
        out = read_output(s3, key=OUT_KEY)
    assert result["findings"] == 120 and result["skipped"] == {"sample-finding": 60}
    assert len(out) == 60 and all(int(p[4:]) % 2 == 1 for p, _ in out)


def test_exercise_mode_prints_a_few_findings_in_full_and_writes_nothing(
    monkeypatch, tmp_path, capsys
):
    """Exercise 1.2 as the attendee finds it, on the workshop's 22 findings: three in full,
    the others one line each, and those lines fit the 4 KB tail the Lambda console shows."""
    exercise = load_staged("guardduty_ingest", solutions=False, out_dir=tmp_path)
    findings = json.loads((WORKSHOP / "guardduty" / "findings.json").read_text())
    with aws(monkeypatch, prefix="guardduty/") as s3:
        s3.put_object(
            Bucket="data-bucket", Key="guardduty/findings.json", Body=json.dumps(findings)
        )
        result = exercise.handler({}, None)
        assert keys(s3) == []
    out = capsys.readouterr().out
    assert out.count('"AccessKeyDetails": {') + out.count('"accessKeyDetails": {') <= 3
    assert out.count("\n{\n") + out.startswith("{\n") == 3  # three whole JSON documents
    short = out[out.rindex("\n}\n") + 3 :].splitlines()
    assert len(short) == len(findings) - 3 and len("\n".join(short)) < 4096
    assert all(" severity=" in line and " principal=" in line for line in short)
    assert result["tuples_written"] == 0 and result["output"] is None


def test_the_documented_edits(monkeypatch, tmp_path, capsys):
    def attendee(text: str) -> str:
        # 1.2 step 4: set PRINT_IN_FULL to 0
        lines = text.splitlines(keepends=True)
        i = next(n for n, line in enumerate(lines) if "TODO (exercise 1.2, step 4)" in line)
        assert lines[i + 1] == "PRINT_IN_FULL = 3\n"
        lines[i + 1] = "PRINT_IN_FULL = 0\n"
        # 2.2 step 1: uncomment the get_tuples line
        return uncomment_after_todo("".join(lines), "TODO (exercise 2.2, step 1)")

    edited = load_staged("guardduty_ingest", solutions=False, out_dir=tmp_path, edit=attendee)
    with aws(monkeypatch, prefix="gd/") as s3:
        put_every_container(s3)
        capsys.readouterr()
        edited.handler({}, None)
        out = capsys.readouterr().out
        assert sorted(read_output(s3, key=OUT_KEY)) == sorted(EXPECTED)
    assert "Recon:IAMUser/MaliciousIPCaller severity=5.0 principal=AIDAUSER1 ip=167.99.1.2" in out
    assert '"AccessKeyDetails": {' not in out


def test_no_output_configured_is_a_clear_error(monkeypatch):
    with aws(monkeypatch):
        monkeypatch.delenv("OUTPUT_BUCKET")
        with pytest.raises(ValueError, match="OUTPUT_BUCKET"):
            index.handler({}, None)
