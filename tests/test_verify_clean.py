"""`python -m secml verify-clean` against moto."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from secml.cli import main

REGION = "us-west-2"
IMAGE = "174872318107.dkr.ecr.us-west-2.amazonaws.com/ipinsights:1"


@pytest.fixture
def account(monkeypatch):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


def _other_stacks_things() -> None:
    """Resources of another stack and of nobody: verify-clean must not report them."""
    boto3.client("s3", region_name=REGION).create_bucket(
        Bucket="otherstack-databucket-1", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    boto3.client("logs", region_name=REGION).create_log_group(
        logGroupName="/aws/lambda/OtherStack-Ingest-abc", tags={"secml:stack": "OtherStack"}
    )


def test_a_clean_account_passes(account, capsys):
    _other_stacks_things()
    assert main(["verify-clean", "--region", REGION]) == 0
    assert "clean: nothing of stack SecmlWorkshop left" in capsys.readouterr().out


def test_one_leftover_fails_and_is_named(account, capsys):
    _other_stacks_things()
    boto3.client("logs", region_name=REGION).create_log_group(
        logGroupName="/aws/lambda/SecmlWorkshop-IngestCloudTrailIngest-x1"
    )
    assert main(["verify-clean", "--region", REGION]) == 1
    captured = capsys.readouterr()
    assert "/aws/lambda/SecmlWorkshop-IngestCloudTrailIngest-x1" in captured.out
    assert "OtherStack" not in captured.out
    assert "1 leftover(s)" in captured.err


def test_tagged_sagemaker_endpoint_and_named_bucket_and_role_are_reported(account, capsys):
    sm = boto3.client("sagemaker", region_name=REGION)
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(
        RoleName="Team2-NotebookExecutionRole-abc", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    tags = [{"Key": "secml:stack", "Value": "Team2"}]
    sm.create_model(
        ModelName="ipinsights-2026", ExecutionRoleArn=role, PrimaryContainer={"Image": IMAGE}
    )
    sm.create_endpoint_config(
        EndpointConfigName="ipinsights-2026",
        ProductionVariants=[
            {
                "VariantName": "all",
                "ModelName": "ipinsights-2026",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    sm.create_endpoint(
        EndpointName="ipinsights-2026", EndpointConfigName="ipinsights-2026", Tags=tags
    )
    boto3.client("s3", region_name=REGION).create_bucket(
        Bucket="team2-datadatabucket-xyz", CreateBucketConfiguration={"LocationConstraint": REGION}
    )

    assert main(["verify-clean", "--stack", "Team2", "--region", REGION]) == 1
    out = capsys.readouterr().out
    assert "endpoint/ipinsights-2026" in out
    assert "team2-datadatabucket-xyz" in out
    assert "Team2-NotebookExecutionRole-abc" in out
    assert "endpoint-config" not in out  # untagged, not secml- named: not the stack's


def test_without_a_region_it_says_so_in_one_line(account, capsys):
    assert main(["verify-clean"]) == 2
    err = capsys.readouterr().err
    assert (
        err.strip() == "secml verify-clean: error: no AWS region: pass --region or set AWS_REGION"
    )
