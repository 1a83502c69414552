"""Shared by the ingest tests: a mocked AWS account, CloudTrail records and files, staging."""

from __future__ import annotations

import contextlib
import gzip
import importlib.util
import json
import sys
from pathlib import Path

import boto3
from moto import mock_aws

from lambda_src import ingest_common
from lambda_src.staging import stage_function

REGION = "us-west-2"
ACCOUNT = "111122223333"


@contextlib.contextmanager
def aws(monkeypatch, *, input_bucket="data-bucket", output_bucket="tuples-bucket", prefix=""):
    """A moto account with an input and an output bucket, and the Lambda environment set."""
    for var in (
        "AWS_ENDPOINT_URL",
        "AWS_PROFILE",
        "INPUT_BUCKET",
        "INPUT_PREFIX",
        "OUTPUT_BUCKET",
        "OUTPUT_KEY",
        "IPV4_ONLY",
        "INCLUDE_SAMPLES",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    ingest_common.reset_clients()
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (input_bucket, output_bucket):
            s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
        monkeypatch.setenv("INPUT_BUCKET", input_bucket)
        monkeypatch.setenv("INPUT_PREFIX", prefix)
        monkeypatch.setenv("OUTPUT_BUCKET", output_bucket)
        try:
            yield s3
        finally:
            ingest_common.reset_clients()


def read_output(
    s3, bucket="tuples-bucket", key="train/cloudtrail_tuples.csv"
) -> list[tuple[str, str]]:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    return [tuple(line.split(",")) for line in body.splitlines()]


def keys(s3, bucket="tuples-bucket") -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def record(
    principal_id="AIDAEXAMPLEUSER00001", ip="203.0.113.10", *, identity=None, **extra
) -> dict:
    """A CloudTrail record with the real field set, in CloudTrail's key order."""
    ident = (
        identity
        if identity is not None
        else {
            "type": "IAMUser",
            "principalId": principal_id,
            "arn": f"arn:aws:iam::{ACCOUNT}:user/dev",
            "accountId": ACCOUNT,
            "accessKeyId": "AKIAEXAMPLEKEY000001",
            "userName": "dev",
        }
    )
    rec = {
        "eventVersion": "1.09",
        "userIdentity": ident,
        "eventTime": "2025-06-02T10:00:00Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": "DescribeInstances",
        "awsRegion": REGION,
        "sourceIPAddress": ip,
        "userAgent": "aws-cli/2.15.30",
        "requestParameters": {"instancesSet": {}},
        "responseElements": None,
        "requestID": "1b6e5f1a-0000-4000-a000-000000000001",
        "eventID": "2c7f6a2b-0000-4000-b000-000000000002",
        "readOnly": True,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
        "tlsDetails": {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": "ec2.us-west-2.amazonaws.com",
        },
    }
    if ident is None:
        del rec["userIdentity"]
    rec.update(extra)
    return rec


def log_bytes(records: list, *, compact=True, compress=True) -> bytes:
    text = json.dumps(
        {"Records": records},
        separators=(",", ":") if compact else None,
        indent=None if compact else 2,
    )
    data = text.encode()
    return gzip.compress(data, mtime=0) if compress else data


def ct_key(n: int, region=REGION) -> str:
    return (
        f"AWSLogs/{ACCOUNT}/CloudTrail/{region}/2025/06/02/"
        f"{ACCOUNT}_CloudTrail_{region}_20250602T{n // 60 % 24:02d}{n % 60:02d}Z_{n:016d}.json.gz"
    )


def load_staged(name: str, *, solutions: bool, out_dir: Path, edit=None):
    """Stage a function, optionally edit its index.py as text (as an attendee would), and import
    it the way Lambda does: as the top-level module `index` next to ingest_common.py."""
    folder = stage_function(name, solutions=solutions, out_dir=out_dir)
    index_py = folder / "index.py"
    if edit is not None:
        index_py.write_text(edit(index_py.read_text()))
    for mod in ("index", "ingest_common"):
        sys.modules.pop(mod, None)
    sys.path.insert(0, str(folder))
    try:
        spec = importlib.util.spec_from_file_location("index", index_py)
        module = importlib.util.module_from_spec(spec)
        sys.modules["index"] = module
        spec.loader.exec_module(module)
        module.ingest_common = sys.modules["ingest_common"]
        return module
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("index", None)
        sys.modules.pop("ingest_common", None)


def uncomment_after_todo(text: str, todo: str) -> str:
    """The attendee's edit: uncomment the commented-out code line right below the TODO."""
    lines = text.splitlines(keepends=True)
    i = next(n for n, line in enumerate(lines) if todo in line)
    target = lines[i + 1]
    stripped = target.lstrip()
    assert stripped.startswith("# "), target
    indent = target[: len(target) - len(stripped)]
    lines[i + 1] = indent + stripped[2:]
    return "".join(lines)
