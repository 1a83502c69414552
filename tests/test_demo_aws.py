"""`secml demo --backend aws --stack NAME` against a stack in moto.

moto cannot run the deployed Lambda code without Docker (its simple Lambda backend answers
invocations without running them), so the test first runs the real handlers in-process with the
deployed functions' configuration: the bucket then holds what the deployed functions would have
written, and the aws backend's own discovery, invocation and read-back run unchanged.
"""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from secml.demo.aws_backend import discover, run_aws
from secml.demo.lambdas import invoke
from secml.demo.pipeline import DemoOptions
from secml.demo.s3server import patched_environ
from secml.demo.template import HANDLER_MODULES, IngestFunction
from secml.errors import SecmlError
from tests.demo_support import reduced_workshop_dataset


def _function(prefix: str, output_key: str) -> dict:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Code": {"ZipFile": "def handler(event, context):\n    return {}\n"},
            "Handler": "index.handler",
            "Runtime": "python3.13",
            "Role": {"Fn::GetAtt": ["Role", "Arn"]},
            "Environment": {
                "Variables": {
                    "INPUT_BUCKET": {"Ref": "DataDataBucketA7E8509A"},
                    "INPUT_PREFIX": prefix,
                    "OUTPUT_BUCKET": {"Ref": "DataTuplesBucket85B075C6"},
                    "OUTPUT_KEY": output_key,
                    "IPV4_ONLY": "true",
                }
            },
        },
    }


# The deployed stack's shape, as far as the aws backend looks at it (logical ids as CDK makes).
TEMPLATE = {
    "Resources": {
        "Role": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            },
        },
        "DataDataBucketA7E8509A": {"Type": "AWS::S3::Bucket"},
        "DataTuplesBucket85B075C6": {"Type": "AWS::S3::Bucket"},
        "IngestCloudTrailIngestB3F7CF51": _function("cloudtrail/", "train/cloudtrail_tuples.csv"),
        "IngestGuardDutyIngest6336DD31": _function("guardduty/", "infer/guardduty_tuples.csv"),
    }
}


@pytest.fixture
def aws(monkeypatch):
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with patched_environ(env), mock_aws(config={"lambda": {"use_docker": False}}):
        yield


def deploy(tmp_path) -> dict[str, dict]:
    """Create the stack, upload the dataset as BucketDeployment would, run the ingest code."""
    cfn, lam, s3 = (boto3.client(s) for s in ("cloudformation", "lambda", "s3"))
    cfn.create_stack(StackName="Workshop", TemplateBody=json.dumps(TEMPLATE))
    deployed = discover(cfn, lam, "Workshop")
    dataset = reduced_workshop_dataset(tmp_path / "dataset")
    bucket = deployed.environments["CloudTrailIngest"]["INPUT_BUCKET"]
    for path in dataset.rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), bucket, path.relative_to(dataset).as_posix())
    for name, module in HANDLER_MODULES.items():
        invoke(IngestFunction(name, name, module, deployed.environments[name]))
    return deployed.environments


def test_discover_finds_the_functions_and_their_deployed_settings(aws, tmp_path):
    envs = deploy(tmp_path)
    assert envs["CloudTrailIngest"]["OUTPUT_KEY"] == "train/cloudtrail_tuples.csv"
    assert envs["GuardDutyIngest"]["INPUT_PREFIX"] == "guardduty/"
    assert envs["CloudTrailIngest"]["INPUT_BUCKET"].startswith("workshop-datadatabucket")


def test_aws_backend_invokes_the_deployed_functions_and_ranks_findings(aws, tmp_path):
    deploy(tmp_path)
    result = run_aws(
        DemoOptions(backend="aws", stack="Workshop", epochs=1, vector_dim=16, progress=False)
    )
    assert [i.function for i in result.invocations] == ["CloudTrailIngest", "GuardDutyIngest"]
    assert result.resource_counts["AWS::Lambda::Function"] == 2
    assert str(result.dataset).startswith("s3://workshop-datadatabucket")
    assert result.n_train_tuples > 100
    labels = {f.label for f in result.findings}
    assert labels == {"malicious", "benign"}
    assert result.ranking is not None and result.ranking.n_malicious > 0


def test_unknown_stack_is_one_clear_error(aws):
    with pytest.raises(SecmlError, match="stack Nope: Stack with id Nope does not exist"):
        run_aws(DemoOptions(backend="aws", stack="Nope"))
