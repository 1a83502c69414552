"""lambda_src/cleanup against moto: what is the stack's goes, everything else stays."""

from __future__ import annotations

import contextlib

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from tests.handler_support import load_handler

cleanup = load_handler("cleanup")
REGION = "us-west-2"
STACK = "SecmlWorkshop"
TAG = {"Key": "secml:stack", "Value": STACK}
IMAGE = "174872318107.dkr.ecr.us-west-2.amazonaws.com/ipinsights:1"


@pytest.fixture
def aws(monkeypatch):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        iam = boto3.client("iam", region_name=REGION)
        trust = '{"Version":"2012-10-17","Statement":[]}'
        roles = {
            name: iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
            for name in ("notebook-role", "someone-else")
        }
        yield {
            "clients": cleanup.Clients(
                sagemaker=boto3.client("sagemaker", region_name=REGION),
                logs=boto3.client("logs", region_name=REGION),
                s3=boto3.client("s3", region_name=REGION),
            ),
            "roles": roles,
        }


def _model(sm, name: str, role: str, tags: list) -> None:
    sm.create_model(
        ModelName=name, ExecutionRoleArn=role, PrimaryContainer={"Image": IMAGE}, Tags=tags
    )


def _serving(sm, name: str, role: str, tags: list) -> None:
    _model(sm, name, role, tags)
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "all",
                "ModelName": name,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
        Tags=tags,
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name, Tags=tags)


def _training_job(sm, logs, name: str, role: str, tags: list) -> None:
    sm.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        RoleArn=role,
        OutputDataConfig={"S3OutputPath": "s3://tuples/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
        Tags=tags,
    )
    group = cleanup.TRAINING_LOGS
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=f"{name}/algo-1-1700000000")


def _event(buckets: list[str], role: str) -> dict:
    return {
        "RequestType": "Delete",
        "PhysicalResourceId": f"cleanup-{STACK}",
        "ResourceProperties": {
            "StackName": STACK,
            "TagKey": "secml:stack",
            "NamePrefix": "secml-",
            "NotebookRoleArn": role,
            "Buckets": buckets,
        },
    }


def _names(sm, logs) -> dict[str, set[str]]:
    return {
        "endpoints": {e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]},
        "configs": {c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]},
        "models": {m["ModelName"] for m in sm.list_models()["Models"]},
        "groups": {g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]},
        "training_streams": {
            s["logStreamName"]
            for s in logs.describe_log_streams(logGroupName=cleanup.TRAINING_LOGS)["logStreams"]
        },
    }


def test_delete_removes_the_stacks_resources_only_and_a_second_delete_is_a_no_op(aws):
    clients, roles = aws["clients"], aws["roles"]
    sm, logs, s3 = clients.sagemaker, clients.logs, clients.s3
    other_tag = [{"Key": "secml:stack", "Value": "AnotherStack"}]
    _serving(sm, "tagged", roles["someone-else"], [TAG])
    _serving(sm, "untagged", roles["notebook-role"], [])
    _serving(sm, "other-stack", roles["notebook-role"], other_tag)
    _model(sm, "secml-by-our-role", roles["notebook-role"], [])  # name + role fallback
    _model(sm, "secml-by-other-role", roles["someone-else"], [])
    _training_job(sm, logs, "tagged-job", roles["someone-else"], [TAG])
    _training_job(sm, logs, "secml-fallback-job", roles["notebook-role"], [])
    _training_job(sm, logs, "foreign-job", roles["notebook-role"], [])
    for name in ("tagged", "untagged", "other-stack"):
        logs.create_log_group(logGroupName=f"{cleanup.ENDPOINT_LOGS}{name}")
    s3.create_bucket(Bucket="tuples-b", CreateBucketConfiguration={"LocationConstraint": REGION})
    for i in range(3):
        s3.put_object(Bucket="tuples-b", Key=f"output/job/{i}", Body=b"x")

    event = _event(["tuples-b", "already-deleted-b"], roles["notebook-role"])
    result = cleanup.handle(event, clients)

    left = _names(sm, logs)
    assert left["endpoints"] == {"untagged", "other-stack"}
    assert left["configs"] == {"untagged", "other-stack"}
    assert left["models"] == {"untagged", "other-stack", "secml-by-other-role"}
    assert f"{cleanup.ENDPOINT_LOGS}tagged" not in left["groups"]
    assert {f"{cleanup.ENDPOINT_LOGS}untagged", f"{cleanup.ENDPOINT_LOGS}other-stack"} <= left[
        "groups"
    ]
    assert left["training_streams"] == {"foreign-job/algo-1-1700000000"}
    assert s3.list_objects_v2(Bucket="tuples-b").get("KeyCount") == 0
    assert result["Data"]["Errors"] == "0"
    assert result["PhysicalResourceId"] == f"cleanup-{STACK}"

    again = cleanup.handle(event, clients)
    assert again["Data"] == {"Stopped": "0", "Deleted": "0", "ObjectsDeleted": "0", "Errors": "0"}
    assert _names(sm, logs) == left


def test_create_and_update_change_nothing(aws):
    clients, roles = aws["clients"], aws["roles"]
    _serving(clients.sagemaker, "tagged", roles["notebook-role"], [TAG])
    for request in ("Create", "Update"):
        event = {**_event([], roles["notebook-role"]), "RequestType": request}
        assert cleanup.handle(event, clients)["PhysicalResourceId"] == f"cleanup-{STACK}"
    assert clients.sagemaker.list_endpoints()["Endpoints"]


def test_running_jobs_of_the_stack_are_stopped():
    # moto has no StopTrainingJob / StopTransformJob: this conversation is stubbed.
    sm = boto3.client(
        "sagemaker", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    arn = f"arn:aws:sagemaker:{REGION}:123456789012:training-job/job-1"
    t_arn = f"arn:aws:sagemaker:{REGION}:123456789012:transform-job/tr-1"
    when = "2026-11-01T00:00:00Z"
    with Stubber(sm) as stub:
        stub.add_response(
            "list_training_jobs",
            {
                "TrainingJobSummaries": [
                    {
                        "TrainingJobName": "job-1",
                        "TrainingJobArn": arn,
                        "CreationTime": when,
                        "TrainingJobStatus": "InProgress",
                    }
                ]
            },
        )
        stub.add_response("list_tags", {"Tags": [TAG]}, {"ResourceArn": arn})
        stub.add_response("stop_training_job", {}, {"TrainingJobName": "job-1"})
        stub.add_response(
            "list_hyper_parameter_tuning_jobs", {"HyperParameterTuningJobSummaries": []}
        )
        stub.add_response(
            "list_transform_jobs",
            {
                "TransformJobSummaries": [
                    {
                        "TransformJobName": "tr-1",
                        "TransformJobArn": t_arn,
                        "CreationTime": when,
                        "TransformJobStatus": "InProgress",
                    }
                ]
            },
        )
        stub.add_response("list_tags", {"Tags": [TAG]}, {"ResourceArn": t_arn})
        stub.add_response("stop_transform_job", {}, {"TransformJobName": "tr-1"})
        owner = cleanup.Ownership(
            sm, tag_key="secml:stack", stack_name=STACK, prefix="secml-", role_arn="r"
        )
        report = cleanup.Report()
        training, transform = cleanup._stop_jobs(
            cleanup.Clients(sagemaker=sm, logs=None, s3=None), owner, report
        )
        stub.assert_no_pending_responses()
    assert report.stopped == ["training-job/job-1", "transform-job/tr-1"]
    assert (training, transform) == (["job-1"], ["tr-1"])
