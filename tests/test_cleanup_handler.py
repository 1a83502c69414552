"""lambda_src/cleanup against moto: what is the stack's goes, everything else stays."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber
from moto import mock_aws

from tests.handler_support import load_handler

cleanup = load_handler("cleanup")
REGION = "us-west-2"
STACK = "SecmlWorkshop"
TAG = {"Key": "secml:stack", "Value": STACK}
IMAGE = "174872318107.dkr.ecr.us-west-2.amazonaws.com/ipinsights:1"
ACCOUNT = "123456789012"
WHEN = datetime(2026, 11, 1, tzinfo=UTC)


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


def _event(buckets: list[str], role: str, created: datetime | None = None) -> dict:
    created = created or datetime.now(UTC) - timedelta(hours=1)
    return {
        "RequestType": "Delete",
        "PhysicalResourceId": cleanup.physical_id(STACK, created),
        "ResourceProperties": {
            "StackName": STACK,
            "TagKey": "secml:stack",
            "NamePrefix": "secml-",
            "NotebookRoleArn": role,
            "Buckets": buckets,
        },
    }


def _clock(deadline: float = 600.0, on_sleep=None) -> cleanup.Clock:
    """A clock whose sleep only moves its time on (and runs on_sleep, the world moving on)."""
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds
        if on_sleep:
            on_sleep()

    return cleanup.Clock(deadline=deadline, now=lambda: now[0], sleep=sleep)


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


def _tags_asked_for(sm) -> list[str]:
    """Records the ResourceArn of every ListTags call the client makes."""
    asked: list[str] = []
    sm.meta.events.register(
        "provide-client-params.sagemaker.ListTags",
        lambda params, **_: asked.append(params["ResourceArn"]),
    )
    return asked


def _bucket(s3, name: str, keys: int = 3) -> None:
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    for i in range(keys):
        s3.put_object(Bucket=name, Key=f"output/job/{i}", Body=b"x")


def test_delete_removes_the_stacks_resources_only_and_a_second_delete_is_a_no_op(aws):
    clients, roles = aws["clients"], aws["roles"]
    sm, logs, s3 = clients.sagemaker, clients.logs, clients.s3
    other_tag = [{"Key": "secml:stack", "Value": "AnotherStack"}]
    _serving(sm, "secml-tagged", roles["someone-else"], [TAG])
    _serving(sm, "secml-untagged", roles["someone-else"], [])
    _serving(sm, "secml-other-stack", roles["someone-else"], other_tag)
    _model(sm, "secml-by-our-role", roles["notebook-role"], [])  # name + role fallback
    _model(sm, "secml-by-other-role", roles["someone-else"], [])
    _training_job(sm, logs, "secml-tagged-job", roles["someone-else"], [TAG])
    _training_job(sm, logs, "secml-fallback-job", roles["notebook-role"], [])
    _training_job(sm, logs, "secml-foreign-job", roles["someone-else"], [])
    for name in ("secml-tagged", "secml-untagged", "secml-other-stack"):
        logs.create_log_group(logGroupName=f"{cleanup.ENDPOINT_LOGS}{name}")
    _bucket(s3, "tuples-b")

    event = _event(["tuples-b", "already-deleted-b"], roles["notebook-role"])
    result = cleanup.handle(event, clients, _clock())

    left = _names(sm, logs)
    assert left["endpoints"] == {"secml-untagged", "secml-other-stack"}
    assert left["configs"] == {"secml-untagged", "secml-other-stack"}
    assert left["models"] == {"secml-untagged", "secml-other-stack", "secml-by-other-role"}
    assert f"{cleanup.ENDPOINT_LOGS}secml-tagged" not in left["groups"]
    assert {
        f"{cleanup.ENDPOINT_LOGS}secml-untagged",
        f"{cleanup.ENDPOINT_LOGS}secml-other-stack",
    } <= left["groups"]
    assert left["training_streams"] == {"secml-foreign-job/algo-1-1700000000"}
    assert s3.list_objects_v2(Bucket="tuples-b").get("KeyCount") == 0
    assert result["Data"]["Errors"] == "0"
    assert result["PhysicalResourceId"] == event["PhysicalResourceId"]

    again = cleanup.handle(event, clients, _clock())
    assert again["Data"] == {"Stopped": "0", "Deleted": "0", "ObjectsDeleted": "0", "Errors": "0"}
    assert _names(sm, logs) == left


def test_create_records_its_time_and_update_keeps_it_changing_nothing(aws):
    clients, roles = aws["clients"], aws["roles"]
    _serving(clients.sagemaker, "secml-tagged", roles["notebook-role"], [TAG])
    before = datetime.now(UTC).replace(microsecond=0)
    event = {**_event([], roles["notebook-role"]), "RequestType": "Create"}
    del event["PhysicalResourceId"]
    created = cleanup.handle(event, clients, _clock())["PhysicalResourceId"]
    assert created.startswith(f"cleanup-{STACK}-")
    assert before <= cleanup.created_at(created) <= datetime.now(UTC)
    update = {**event, "RequestType": "Update", "PhysicalResourceId": created}
    assert cleanup.handle(update, clients, _clock())["PhysicalResourceId"] == created
    assert clients.sagemaker.list_endpoints()["Endpoints"]


# Issue 12, item 4: no listing of every job in the region and asking each for its tags.
def test_only_prefixed_resources_created_after_the_stack_are_looked_at(aws):
    clients, roles = aws["clients"], aws["roles"]
    sm, logs = clients.sagemaker, clients.logs
    asked = _tags_asked_for(sm)
    for i in range(5):  # someone else's busy region, tagged like ours even
        _serving(sm, f"team-model-{i}", roles["someone-else"], [TAG])
        _training_job(sm, logs, f"team-job-{i}", roles["notebook-role"], [TAG])
    _serving(sm, "secml-tagged", roles["someone-else"], [TAG])

    cleanup.handle(_event([], roles["notebook-role"]), clients, _clock())
    assert asked and all(":endpoint" in a or "/secml-" in a for a in asked)
    assert not [a for a in asked if "team-" in a]
    assert len(sm.list_endpoints()["Endpoints"]) == 5

    # A stack created after these resources does not touch them (nor ask for their tags).
    asked.clear()
    _serving(sm, "secml-older", roles["someone-else"], [TAG])
    later = datetime.now(UTC) + timedelta(hours=1)
    cleanup.handle(_event([], roles["notebook-role"], created=later), clients, _clock())
    assert asked == []
    assert "secml-older" in {e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]}


def _stubbed_sagemaker():
    return boto3.client(
        "sagemaker", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )


def _arn(kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{kind}/{name}"


def _listed(operation: str, key: str, items: list, since: datetime) -> tuple:
    return (operation, {key: items}, {"NameContains": "secml-", "CreationTimeAfter": since})


def _expect_lists(stub, since: datetime, training=(), transform=(), tuning=()) -> None:
    """The list calls in the order the handler makes them, filtered by prefix and time."""
    for operation, key, items in [
        ("list_hyper_parameter_tuning_jobs", "HyperParameterTuningJobSummaries", tuning),
        ("list_training_jobs", "TrainingJobSummaries", training),
        ("list_transform_jobs", "TransformJobSummaries", transform),
    ]:
        stub.add_response(*_listed(operation, key, list(items), since))
        for item in items:
            arn = next(v for k, v in item.items() if k.endswith("Arn"))
            stub.add_response("list_tags", {"Tags": [TAG]}, {"ResourceArn": arn})
            if "TrainingJobName" in item and item["TrainingJobStatus"] == "InProgress":
                name = item["TrainingJobName"]
                stub.add_response("stop_training_job", {}, {"TrainingJobName": name})
            if "TransformJobName" in item and item["TransformJobStatus"] == "InProgress":
                name = item["TransformJobName"]
                stub.add_response("stop_transform_job", {}, {"TransformJobName": name})


def _expect_no_serving(stub, since: datetime) -> None:
    stub.add_response(*_listed("list_endpoints", "Endpoints", [], since))
    stub.add_response(*_listed("list_endpoint_configs", "EndpointConfigs", [], since))
    stub.add_response(*_listed("list_models", "Models", [], since))


def _training(name: str, status: str) -> dict:
    return {
        "TrainingJobName": name,
        "TrainingJobArn": _arn("training-job", name),
        "CreationTime": WHEN,
        "TrainingJobStatus": status,
    }


def _described_training(name: str, status: str) -> dict:
    return {
        "TrainingJobName": name,
        "TrainingJobArn": _arn("training-job", name),
        "AlgorithmSpecification": {"TrainingInputMode": "File"},
        "ModelArtifacts": {"S3ModelArtifacts": "s3://b/output/model.tar.gz"},
        "TrainingJobStatus": status,
        "SecondaryStatus": status,
        "StoppingCondition": {},
        "CreationTime": WHEN,
        "ResourceConfig": {"VolumeSizeInGB": 5},
    }


def test_list_calls_ask_sagemaker_for_the_prefix_and_the_stacks_creation_time():
    sm = _stubbed_sagemaker()
    created = WHEN - timedelta(hours=1)
    since = created - cleanup.CLOCK_SKEW
    transform = {
        "TransformJobName": "secml-tr",
        "TransformJobArn": _arn("transform-job", "secml-tr"),
        "CreationTime": WHEN,
        "TransformJobStatus": "Completed",
    }
    with Stubber(sm) as stub:
        _expect_lists(stub, since, transform=[transform])
        _expect_no_serving(stub, since)
        clients = cleanup.Clients(sagemaker=sm, logs=None, s3=None)
        owner = cleanup.Ownership(
            sm,
            tag_key="secml:stack",
            stack_name=STACK,
            prefix="secml-",
            role_arn="r",
            since=created,
        )
        report = cleanup.Report()
        cleanup._stop_jobs(clients, owner, report)
        cleanup._delete_serving(clients, owner, report)
        stub.assert_no_pending_responses()


def test_running_jobs_of_the_stack_are_stopped_and_watched():
    # moto has no StopTrainingJob / StopTransformJob: this conversation is stubbed.
    sm = _stubbed_sagemaker()
    since = WHEN - cleanup.CLOCK_SKEW
    transform = {
        "TransformJobName": "secml-tr-1",
        "TransformJobArn": _arn("transform-job", "secml-tr-1"),
        "CreationTime": WHEN,
        "TransformJobStatus": "InProgress",
    }
    training = [_training("secml-job-1", "InProgress"), _training("secml-job-2", "Completed")]
    with Stubber(sm) as stub:
        _expect_lists(stub, since, training=training, transform=[transform])
        owner = cleanup.Ownership(
            sm, tag_key="secml:stack", stack_name=STACK, prefix="secml-", role_arn="r", since=WHEN
        )
        report = cleanup.Report()
        training_names, transform_names, watch = cleanup._stop_jobs(
            cleanup.Clients(sagemaker=sm, logs=None, s3=None), owner, report
        )
        stub.assert_no_pending_responses()
    assert report.stopped == ["training-job/secml-job-1", "transform-job/secml-tr-1"]
    assert (training_names, transform_names) == (["secml-job-1", "secml-job-2"], ["secml-tr-1"])
    assert watch == [
        cleanup.Job("training-job", "secml-job-1"),
        cleanup.Job("transform-job", "secml-tr-1"),
    ]


def _stopping_job_conversation(stub, since: datetime, statuses: list[str]) -> None:
    _expect_lists(stub, since, training=[_training("secml-job", "InProgress")])
    _expect_no_serving(stub, since)
    for status in statuses:
        stub.add_response(
            "describe_training_job",
            _described_training("secml-job", status),
            {"TrainingJobName": "secml-job"},
        )


# Issue 12, item 5: StopTrainingJob is asynchronous; the model is uploaded while Stopping.
def test_buckets_are_emptied_only_after_stopped_jobs_have_written_their_model(aws):
    clients = aws["clients"]
    s3 = clients.s3
    _bucket(s3, "tuples-b")
    sm = _stubbed_sagemaker()
    created = WHEN - timedelta(hours=1)

    def sagemaker_uploads_the_model() -> None:
        s3.put_object(Bucket="tuples-b", Key="output/secml-job/model.tar.gz", Body=b"m")

    with Stubber(sm) as stub:
        since = cleanup.created_at(cleanup.physical_id(STACK, created)) - cleanup.CLOCK_SKEW
        _stopping_job_conversation(stub, since, ["Stopping", "Stopping", "Stopped"])
        event = _event(["tuples-b"], "r", created=created)
        clients = cleanup.Clients(sagemaker=sm, logs=clients.logs, s3=s3)
        result = cleanup.handle(event, clients, _clock(on_sleep=sagemaker_uploads_the_model))
        stub.assert_no_pending_responses()
    assert s3.list_objects_v2(Bucket="tuples-b").get("KeyCount") == 0
    assert result["Data"]["Stopped"] == "1"


def test_the_wait_for_a_stopping_job_is_bounded_and_then_fails_naming_it(aws):
    clients = aws["clients"]
    _bucket(clients.s3, "tuples-b")
    sm = _stubbed_sagemaker()
    created = WHEN - timedelta(hours=1)
    # 30 s left before the reserve: polls at 0, 15 and 30 s, then it gives up.
    clock = _clock(deadline=30.0)
    with Stubber(sm) as stub:
        since = cleanup.created_at(cleanup.physical_id(STACK, created)) - cleanup.CLOCK_SKEW
        _stopping_job_conversation(stub, since, ["Stopping"] * 3)
        event = _event(["tuples-b"], "r", created=created)
        clients = cleanup.Clients(sagemaker=sm, logs=clients.logs, s3=clients.s3)
        with pytest.raises(
            cleanup.CleanupIncomplete, match="training-job secml-job still Stopping"
        ):
            cleanup.handle(event, clients, clock)
        stub.assert_no_pending_responses()
    assert clock.now() <= 30.0
    assert clients.s3.list_objects_v2(Bucket="tuples-b").get("KeyCount") == 0


# Issue 12, item 6: an endpoint left behind bills every hour; the delete must not succeed.
def test_an_endpoint_still_there_after_the_delete_fails_it_naming_the_endpoint(aws, monkeypatch):
    clients, roles = aws["clients"], aws["roles"]
    sm = clients.sagemaker
    _serving(sm, "secml-endpoint", roles["notebook-role"], [TAG])
    monkeypatch.setattr(sm, "delete_endpoint", lambda **_: {})  # accepted, but nothing happens
    clock = _clock()
    with pytest.raises(cleanup.CleanupIncomplete) as failure:
        cleanup.handle(_event([], roles["notebook-role"]), clients, clock)
    assert "endpoint secml-endpoint still there (InService)" in str(failure.value)
    assert "model secml-endpoint" not in str(failure.value)  # that one did go
    assert clock.now() <= cleanup.ENDPOINT_WAIT_S


def test_a_refused_delete_fails_the_cleanup_naming_what_was_refused(aws, monkeypatch):
    clients, roles = aws["clients"], aws["roles"]
    sm = clients.sagemaker
    _model(sm, "secml-model", roles["notebook-role"], [TAG])

    def refuse(**_):
        error = {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}
        raise ClientError(error, "DeleteModel")

    monkeypatch.setattr(sm, "delete_model", refuse)
    with pytest.raises(cleanup.CleanupIncomplete) as failure:
        cleanup.handle(_event([], roles["notebook-role"]), clients, _clock())
    message = str(failure.value)
    assert "could not delete model secml-model" in message
    assert "model secml-model still there" in message
    assert "\n" not in message


def test_an_endpoint_that_is_deleting_is_waited_for_until_it_is_gone():
    sm = _stubbed_sagemaker()
    since = WHEN - cleanup.CLOCK_SKEW
    endpoint = {
        "EndpointName": "secml-ep",
        "EndpointArn": _arn("endpoint", "secml-ep"),
        "CreationTime": WHEN,
        "LastModifiedTime": WHEN,
        "EndpointStatus": "InService",
    }
    described = {**endpoint, "EndpointStatus": "Deleting"}
    gone = ("ValidationException", 'Could not find endpoint "secml-ep".')
    with Stubber(sm) as stub:
        stub.add_response(*_listed("list_endpoints", "Endpoints", [endpoint], since))
        stub.add_response("list_tags", {"Tags": [TAG]}, {"ResourceArn": endpoint["EndpointArn"]})
        stub.add_response("delete_endpoint", {}, {"EndpointName": "secml-ep"})
        stub.add_response(*_listed("list_endpoint_configs", "EndpointConfigs", [], since))
        stub.add_response(*_listed("list_models", "Models", [], since))
        stub.add_response("describe_endpoint", described, {"EndpointName": "secml-ep"})
        stub.add_client_error("describe_endpoint", *gone, expected_params={"EndpointName": ANY})
        owner = cleanup.Ownership(
            sm, tag_key="secml:stack", stack_name=STACK, prefix="secml-", role_arn="r", since=WHEN
        )
        report = cleanup.Report()
        endpoints, others = cleanup._delete_serving(
            cleanup.Clients(sagemaker=sm, logs=None, s3=None), owner, report
        )
        cleanup._verify_gone(sm, endpoints, others, _clock(), report)
        stub.assert_no_pending_responses()
    assert report.left == [] and report.failure() is None


def test_the_failure_message_stays_short_and_counts_what_it_leaves_out():
    report = cleanup.Report(left=[f"endpoint secml-{i} still there (InService)" for i in range(20)])
    report.errors.append("could not delete model secml-m: " + "x" * 5000)
    message = report.failure()
    assert message.startswith("cleanup incomplete: endpoint secml-0 still there (InService); ")
    assert "; and 13 more." in message
    assert len(message) < 2000
    assert len(cleanup.Report(errors=["x" * 5000]).failure()) < 500
    assert cleanup.Report().failure() is None
