"""Custom resource: on stack delete, remove what the workshop notebook made outside CloudFormation.

SageMaker endpoints, endpoint configs and models are deleted; running training, tuning and
transform jobs are stopped (SageMaker keeps finished jobs as history; they cost nothing); the
jobs' and endpoints' log streams go; both workshop buckets are emptied so CloudFormation can
delete them. A resource counts as the stack's when it carries the tag TagKey=StackName, or, for
kinds that record an execution role (models, training and tuning jobs), when its name starts with
NamePrefix and it was created with the stack's notebook role. Nothing else is touched.

Idempotent: a second delete finds nothing left to do. Things already gone are not errors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import boto3
from botocore.exceptions import ClientError

logger = logging.getLogger()
logger.setLevel(logging.INFO)

TRAINING_LOGS = "/aws/sagemaker/TrainingJobs"
TRANSFORM_LOGS = "/aws/sagemaker/TransformJobs"
ENDPOINT_LOGS = "/aws/sagemaker/Endpoints/"
GONE_CODES = {"ResourceNotFound", "ResourceNotFoundException", "NoSuchBucket", "NotFound"}


@dataclass
class Clients:
    sagemaker: object
    logs: object
    s3: object


@dataclass
class Report:
    stopped: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    emptied: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def as_data(self) -> dict[str, str]:
        return {
            "Stopped": str(len(self.stopped)),
            "Deleted": str(len(self.deleted)),
            "ObjectsDeleted": str(sum(self.emptied.values())),
            "Errors": str(len(self.errors)),
        }


def _is_gone(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    code, message = error.get("Code", ""), error.get("Message", "")
    if code in GONE_CODES:
        return True
    return code == "ValidationException" and (
        "Could not find" in message or "does not exist" in message or "not found" in message
    )


def _pages(client, operation: str, key: str, **kwargs) -> Iterator[dict]:
    """Every item of a paginated SageMaker List* call (NextToken style)."""
    while True:
        page = getattr(client, operation)(**kwargs)
        yield from page.get(key, [])
        token = page.get("NextToken")
        if not token:
            return
        kwargs["NextToken"] = token


class Ownership:
    """Decides whether a SageMaker resource belongs to this stack."""

    def __init__(self, sagemaker, *, tag_key: str, stack_name: str, prefix: str, role_arn: str):
        self.sagemaker = sagemaker
        self.tag = {"Key": tag_key, "Value": stack_name}
        self.prefix = prefix
        self.role_arn = role_arn

    def tagged(self, arn: str) -> bool:
        try:
            return self.tag in list(_pages(self.sagemaker, "list_tags", "Tags", ResourceArn=arn))
        except ClientError as exc:
            if _is_gone(exc):
                return False
            raise

    def owns(self, arn: str, name: str, role_of: Callable[[], str | None] | None = None) -> bool:
        if self.tagged(arn):
            return True
        if role_of is None or not self.prefix or not name.startswith(self.prefix):
            return False
        try:
            return bool(self.role_arn) and role_of() == self.role_arn
        except ClientError as exc:
            if _is_gone(exc):
                return False
            raise


def _attempt(report: Report, what: str, call: Callable[[], object]) -> bool:
    """Run one clean-up call; gone counts as done, other errors are recorded, not raised."""
    try:
        call()
        return True
    except ClientError as exc:
        if _is_gone(exc):
            return True
        report.errors.append(f"{what}: {exc}")
        logger.warning("could not %s: %s", what, exc)
        return False


def _stop_jobs(clients: Clients, owner: Ownership, report: Report) -> tuple[list, list]:
    sm = clients.sagemaker
    training: list[str] = []
    for job in _pages(sm, "list_training_jobs", "TrainingJobSummaries"):
        name = job["TrainingJobName"]
        role = lambda n=name: sm.describe_training_job(TrainingJobName=n).get("RoleArn")  # noqa: E731
        if not owner.owns(job["TrainingJobArn"], name, role):
            continue
        training.append(name)
        if job["TrainingJobStatus"] == "InProgress" and _attempt(
            report,
            f"stop training job {name}",
            lambda n=name: sm.stop_training_job(TrainingJobName=n),
        ):
            report.stopped.append(f"training-job/{name}")

    for job in _pages(sm, "list_hyper_parameter_tuning_jobs", "HyperParameterTuningJobSummaries"):
        name = job["HyperParameterTuningJobName"]

        def role(n=name):
            described = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=n)
            return (described.get("TrainingJobDefinition") or {}).get("RoleArn")

        if not owner.owns(job["HyperParameterTuningJobArn"], name, role):
            continue
        if job["HyperParameterTuningJobStatus"] == "InProgress" and _attempt(
            report,
            f"stop tuning job {name}",
            lambda n=name: sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=n),
        ):
            report.stopped.append(f"hyper-parameter-tuning-job/{name}")

    transform: list[str] = []
    for job in _pages(sm, "list_transform_jobs", "TransformJobSummaries"):
        name = job["TransformJobName"]
        if not owner.owns(job["TransformJobArn"], name):
            continue
        transform.append(name)
        if job["TransformJobStatus"] == "InProgress" and _attempt(
            report,
            f"stop transform job {name}",
            lambda n=name: sm.stop_transform_job(TransformJobName=n),
        ):
            report.stopped.append(f"transform-job/{name}")
    return training, transform


def _delete_serving(clients: Clients, owner: Ownership, report: Report) -> list[str]:
    sm = clients.sagemaker
    endpoints: list[str] = []
    for endpoint in list(_pages(sm, "list_endpoints", "Endpoints")):
        name = endpoint["EndpointName"]
        if owner.owns(endpoint["EndpointArn"], name):
            endpoints.append(name)
            if _attempt(
                report, f"delete endpoint {name}", lambda n=name: sm.delete_endpoint(EndpointName=n)
            ):
                report.deleted.append(f"endpoint/{name}")
    for config in list(_pages(sm, "list_endpoint_configs", "EndpointConfigs")):
        name = config["EndpointConfigName"]
        if owner.owns(config["EndpointConfigArn"], name) and _attempt(
            report,
            f"delete endpoint config {name}",
            lambda n=name: sm.delete_endpoint_config(EndpointConfigName=n),
        ):
            report.deleted.append(f"endpoint-config/{name}")
    for model in list(_pages(sm, "list_models", "Models")):
        name = model["ModelName"]
        role = lambda n=name: sm.describe_model(ModelName=n).get("ExecutionRoleArn")  # noqa: E731
        if owner.owns(model["ModelArn"], name, role) and _attempt(
            report, f"delete model {name}", lambda n=name: sm.delete_model(ModelName=n)
        ):
            report.deleted.append(f"model/{name}")
    return endpoints


def _delete_log_streams(logs, group: str, prefix: str, report: Report) -> None:
    try:
        pages = logs.get_paginator("describe_log_streams").paginate(
            logGroupName=group, logStreamNamePrefix=prefix
        )
        names = [s["logStreamName"] for page in pages for s in page.get("logStreams", [])]
    except ClientError as exc:
        if not _is_gone(exc):
            report.errors.append(f"list log streams {group}/{prefix}: {exc}")
        return
    for name in names:
        if _attempt(
            report,
            f"delete log stream {group}:{name}",
            lambda n=name: logs.delete_log_stream(logGroupName=group, logStreamName=n),
        ):
            report.deleted.append(f"log-stream/{group}:{name}")


def _delete_logs(clients: Clients, training, transform, endpoints, report: Report) -> None:
    for name in training:
        _delete_log_streams(clients.logs, TRAINING_LOGS, f"{name}/", report)
    for name in transform:
        _delete_log_streams(clients.logs, TRANSFORM_LOGS, f"{name}/", report)
    for name in endpoints:
        group = f"{ENDPOINT_LOGS}{name}"
        if _attempt(
            report,
            f"delete log group {group}",
            lambda g=group: clients.logs.delete_log_group(logGroupName=g),
        ):
            report.deleted.append(f"log-group/{group}")


def empty_bucket(s3, bucket: str) -> int:
    """Delete every object version and delete marker; returns how many. No bucket: 0."""
    deleted = 0
    try:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            keys = [
                {"Key": item["Key"], "VersionId": item["VersionId"]}
                for item in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            for start in range(0, len(keys), 1000):
                batch = keys[start : start + 1000]
                result = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
                if result.get("Errors"):
                    raise RuntimeError(f"could not delete from {bucket}: {result['Errors'][:3]}")
                deleted += len(batch)
    except ClientError as exc:
        if _is_gone(exc):
            return deleted
        raise
    return deleted


def clean(
    clients: Clients,
    *,
    stack_name: str,
    tag_key: str,
    name_prefix: str,
    notebook_role_arn: str,
    buckets: list[str],
) -> Report:
    report = Report()
    owner = Ownership(
        clients.sagemaker,
        tag_key=tag_key,
        stack_name=stack_name,
        prefix=name_prefix,
        role_arn=notebook_role_arn,
    )
    training, transform = _stop_jobs(clients, owner, report)
    endpoints = _delete_serving(clients, owner, report)
    _delete_logs(clients, training, transform, endpoints, report)
    for bucket in buckets:
        # Not caught: a bucket that cannot be emptied cannot be deleted either; say so here.
        report.emptied[bucket] = empty_bucket(clients.s3, bucket)
    return report


def handle(event: dict, clients: Clients) -> dict:
    props = event.get("ResourceProperties", {})
    physical_id = event.get("PhysicalResourceId") or f"cleanup-{props.get('StackName', '')}"
    if event["RequestType"] != "Delete":
        return {"PhysicalResourceId": physical_id}
    report = clean(
        clients,
        stack_name=props["StackName"],
        tag_key=props["TagKey"],
        name_prefix=props.get("NamePrefix", ""),
        notebook_role_arn=props.get("NotebookRoleArn", ""),
        buckets=list(props.get("Buckets", [])),
    )
    logger.info(
        "cleanup done",
        extra={
            "stopped": report.stopped,
            "deleted": report.deleted,
            "emptied": report.emptied,
            "errors": report.errors,
        },
    )
    return {"PhysicalResourceId": physical_id, "Data": report.as_data()}


def on_event(event, context):
    return handle(
        event,
        Clients(
            sagemaker=boto3.client("sagemaker"), logs=boto3.client("logs"), s3=boto3.client("s3")
        ),
    )
