"""Where the notebook reads its inputs from: the stack's buckets, or the demo's embedded S3."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from tests.notebook_cells import code_cells, load_helpers, tagged_source

FINDING = {
    "Id": "f-1",
    "Type": "UnauthorizedAccess:IAMUser/TorIPCaller",
    "UpdatedAt": "2025-06-15T10:00:00Z",
    "Resource": {"AccessKeyDetails": {"PrincipalId": "AIDAVICTIM:session"}},
    "Service": {"Action": {"AwsApiCallAction": {"RemoteIpDetails": {"IpAddressV4": "192.0.2.66"}}}},
}


def run_loading_cells(monkeypatch, tmp_path, **env) -> dict:
    monkeypatch.chdir(tmp_path)
    for key in ("SECML_TUPLES_DIR", "SECML_DATA_DIR", "SECML_WORKSHOP_CONFIG", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    load_helpers()  # importable as `workshop_helpers`, as next to the notebook
    namespace: dict = {}
    for source in (code_cells()[0], tagged_source("load-inputs")):
        exec(source, namespace)
    return namespace


@pytest.fixture
def buckets(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-west-2")
        for bucket in ("tuples", "data"):
            s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
            )
        s3.put_object(
            Bucket="tuples",
            Key="train/cloudtrail_tuples.csv",
            Body=b"AIDAVICTIM,198.51.100.1\nAIDAOTHER,198.51.100.2\n",
        )
        s3.put_object(
            Bucket="tuples", Key="infer/guardduty_tuples.csv", Body=b"AIDAVICTIM,192.0.2.66\n"
        )
        s3.put_object(Bucket="data", Key="guardduty/findings.json", Body=json.dumps([FINDING]))
        s3.put_object(
            Bucket="data",
            Key="truth.csv",
            Body=b"finding_id,finding_type,label,principal,ip,scenario\n"
            b"f-1,UnauthorizedAccess:IAMUser/TorIPCaller,malicious,AIDAVICTIM,192.0.2.66,tor\n",
        )
        yield s3


def test_local_backend_reads_the_demo_embedded_s3(buckets, monkeypatch, tmp_path):
    ns = run_loading_cells(
        monkeypatch,
        tmp_path,
        SECML_BACKEND="local",
        SECML_TUPLES_BUCKET="tuples",
        SECML_DATA_BUCKET="data",
    )
    data = ns["data"]
    assert data.cloudtrail.values.tolist() == [
        ["AIDAVICTIM", "198.51.100.1"],
        ["AIDAOTHER", "198.51.100.2"],
    ]
    assert data.guardduty.values.tolist() == [["AIDAVICTIM", "192.0.2.66"]]
    assert data.findings[["finding_id", "principal", "ip"]].values.tolist() == [
        ["f-1", "AIDAVICTIM", "192.0.2.66"]
    ]
    assert data.truth["label"].tolist() == ["malicious"]


def write_deployed_config(folder) -> None:
    """The workshop_config.json the notebook instance's on-create script writes."""
    config = {
        "stack_name": "S",
        "region": "us-west-2",
        "data_bucket": "data",
        "tuples_bucket": "tuples",
    }
    (folder / "workshop_config.json").write_text(json.dumps(config))


def test_sagemaker_backend_reads_the_buckets_named_in_the_config(buckets, monkeypatch, tmp_path):
    write_deployed_config(tmp_path)
    buckets.delete_object(Bucket="data", Key="truth.csv")
    ns = run_loading_cells(monkeypatch, tmp_path, SECML_BACKEND="sagemaker")
    assert ns["BACKEND"] == "sagemaker"
    assert len(ns["data"].cloudtrail) == 2
    assert ns["data"].truth is None  # optional: the ranking is shown, the evaluation skipped


def test_missing_tuples_tell_the_attendee_to_finish_exercise_2(buckets, monkeypatch, tmp_path):
    write_deployed_config(tmp_path)
    buckets.delete_object(Bucket="tuples", Key="infer/guardduty_tuples.csv")
    with pytest.raises(FileNotFoundError, match="exercise 2"):
        run_loading_cells(monkeypatch, tmp_path, SECML_BACKEND="sagemaker")
