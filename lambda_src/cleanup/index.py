"""Custom resource: on stack delete, remove what the workshop notebook made outside CloudFormation.

SageMaker endpoints, endpoint configs and models are deleted; running tuning, training and
transform jobs are stopped (SageMaker keeps finished jobs as history; they cost nothing); the
jobs' and endpoints' log streams go; both workshop buckets are emptied so CloudFormation can
delete them.

What counts as the stack's: a name starting with NamePrefix (the notebook names everything
"secml-..."), created after this resource was (the time is kept in its physical id), and either
the tag TagKey=StackName or, for kinds that record an execution role (models, training and
tuning jobs), the stack's notebook role. The SageMaker list calls are filtered by name and
creation time, so a busy region's other jobs are never looked at one by one.

Order matters:
- Stopping a training job is asynchronous: while Stopping it still uploads /opt/ml/model to the
  bucket. The handler waits (bounded) for every stopped job to reach a final state before it
  empties the buckets; otherwise the model lands in an emptied bucket and the bucket's delete
  fails.
- The handler runs well inside its Lambda timeout (the waits end RESERVE_S before it), which is
  itself well under the provider framework's 15 minutes, so CloudFormation always gets an answer.

No silent success: a job still running, an endpoint, config or model still there, or any call
that failed makes the delete fail with one message naming each of them. Idempotent: a second
delete finds nothing left to do. Things already gone are not errors.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import boto3
from botocore.exceptions import ClientError

logger = logging.getLogger()
logger.setLevel(logging.INFO)

TRAINING_LOGS = "/aws/sagemaker/TrainingJobs"
TRANSFORM_LOGS = "/aws/sagemaker/TransformJobs"
ENDPOINT_LOGS = "/aws/sagemaker/Endpoints/"
GONE_CODES = {"ResourceNotFound", "ResourceNotFoundException", "NoSuchBucket", "NotFound"}

PHYSICAL_ID_TIME = "%Y%m%dT%H%M%SZ"
# Resources created this long before the cleanup resource still count (clock skew).
CLOCK_SKEW = timedelta(minutes=5)
# Seconds kept back from the Lambda timeout for emptying the buckets and answering.
RESERVE_S = 120.0
JOB_WAIT_S = 360.0  # stopped jobs: SageMaker uploads the model while Stopping
ENDPOINT_WAIT_S = 120.0  # deleted endpoints: Deleting until they are gone
POLL_S = 15.0
# Job statuses after which SageMaker writes nothing more. Training: Completed | Failed | Stopped
# (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeTrainingJob.html).
FINAL = {"Completed", "Failed", "Stopped", "Deleting", "DeleteFailed"}
MESSAGE_ITEMS = 8
MESSAGE_ITEM_CHARS = 200


class CleanupIncomplete(RuntimeError):
    """Something the stack made is still there; CloudFormation shows this message."""


@dataclass
class Clients:
    sagemaker: object
    logs: object
    s3: object


@dataclass
class Clock:
    """Time as the waits see it: a deadline in now() units, and how to pause (fake in tests)."""

    deadline: float
    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    @classmethod
    def from_seconds_left(cls, seconds: float) -> Clock:
        return cls(deadline=time.monotonic() + seconds - RESERVE_S)

    def until(self, limit_s: float) -> float:
        return min(self.now() + limit_s, self.deadline)


@dataclass
class Report:
    stopped: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    emptied: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)

    def as_data(self) -> dict[str, str]:
        return {
            "Stopped": str(len(self.stopped)),
            "Deleted": str(len(self.deleted)),
            "ObjectsDeleted": str(sum(self.emptied.values())),
            "Errors": str(len(self.errors)),
        }

    def failure(self) -> str | None:
        """One message for CloudFormation's status reason (kept short: it is shown whole)."""
        problems = self.left + self.errors
        if not problems:
            return None
        shown = "; ".join(problem[:MESSAGE_ITEM_CHARS] for problem in problems[:MESSAGE_ITEMS])
        more = len(problems) - MESSAGE_ITEMS
        return (
            f"cleanup incomplete: {shown}{f'; and {more} more' if more > 0 else ''}. Run the "
            "destroy again in a few minutes, or delete these by hand (the cleanup function's "
            "log lists everything it did)."
        )


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


def physical_id(stack_name: str, created: datetime) -> str:
    return f"cleanup-{stack_name}-{created.astimezone(UTC).strftime(PHYSICAL_ID_TIME)}"


def created_at(physical: str) -> datetime | None:
    """When the cleanup resource was created, from its physical id (None if not recorded)."""
    try:
        stamp = datetime.strptime(physical.rsplit("-", 1)[-1], PHYSICAL_ID_TIME)
    except ValueError:
        return None
    return stamp.replace(tzinfo=UTC)


class Ownership:
    """Finds the stack's SageMaker resources and decides whether one belongs to the stack."""

    def __init__(
        self,
        sagemaker,
        *,
        tag_key: str,
        stack_name: str,
        prefix: str,
        role_arn: str,
        since: datetime | None = None,
    ):
        self.sagemaker = sagemaker
        self.tag = {"Key": tag_key, "Value": stack_name}
        self.prefix = prefix
        self.role_arn = role_arn
        self.since = since - CLOCK_SKEW if since else None

    def candidates(self, operation: str, key: str, name_key: str) -> list[dict]:
        """List items named with the prefix and created after the stack.

        NameContains and CreationTimeAfter let SageMaker do the filtering; the same test is
        repeated here because NameContains matches anywhere in the name.
        """
        kwargs: dict = {"NameContains": self.prefix} if self.prefix else {}
        if self.since:
            kwargs["CreationTimeAfter"] = self.since
        found = []
        for item in _pages(self.sagemaker, operation, key, **kwargs):
            created = item.get("CreationTime")
            if not item[name_key].startswith(self.prefix):
                continue
            if self.since and isinstance(created, datetime) and created < self.since:
                continue
            found.append(item)
        return found

    def tagged(self, arn: str) -> bool:
        try:
            return self.tag in list(_pages(self.sagemaker, "list_tags", "Tags", ResourceArn=arn))
        except ClientError as exc:
            if _is_gone(exc):
                return False
            raise

    def owns(self, arn: str, name: str, role_of: Callable[[], str | None] | None = None) -> bool:
        if not name.startswith(self.prefix):
            return False
        if self.tagged(arn):
            return True
        if role_of is None:
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
        report.errors.append(f"could not {what}: {exc}")
        logger.warning("could not %s: %s", what, exc)
        return False


@dataclass(frozen=True)
class Job:
    """A job to watch until SageMaker writes nothing more for it."""

    kind: str  # training-job | transform-job | hyper-parameter-tuning-job
    name: str


def _status(sm, job: Job) -> str | None:
    """The job's status now; None when it is gone."""
    try:
        if job.kind == "training-job":
            return sm.describe_training_job(TrainingJobName=job.name)["TrainingJobStatus"]
        if job.kind == "transform-job":
            return sm.describe_transform_job(TransformJobName=job.name)["TransformJobStatus"]
        described = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=job.name)
        return described["HyperParameterTuningJobStatus"]
    except ClientError as exc:
        if _is_gone(exc):
            return None
        raise


def _stop(report: Report, job: Job, status: str, stop: Callable[[], object]) -> Job | None:
    """Stop the job if it runs; return it if SageMaker may still write for it."""
    if status == "InProgress" and _attempt(report, f"stop {job.kind} {job.name}", stop):
        report.stopped.append(f"{job.kind}/{job.name}")
    return job if status not in FINAL else None


def _stop_jobs(clients: Clients, owner: Ownership, report: Report) -> tuple[list, list, list]:
    """Stop the stack's running jobs; returns training and transform names, and jobs to watch.

    Tuning jobs first: stopping one stops the training jobs it launched, and none start after.
    """
    sm = clients.sagemaker
    watch: list[Job] = []
    for job in owner.candidates(
        "list_hyper_parameter_tuning_jobs",
        "HyperParameterTuningJobSummaries",
        "HyperParameterTuningJobName",
    ):
        name = job["HyperParameterTuningJobName"]

        def role(n=name):
            described = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=n)
            return (described.get("TrainingJobDefinition") or {}).get("RoleArn")

        if owner.owns(job["HyperParameterTuningJobArn"], name, role):
            stop = lambda n=name: sm.stop_hyper_parameter_tuning_job(  # noqa: E731
                HyperParameterTuningJobName=n
            )
            kind = "hyper-parameter-tuning-job"
            watch.append(_stop(report, Job(kind, name), job["HyperParameterTuningJobStatus"], stop))

    training: list[str] = []
    for job in owner.candidates("list_training_jobs", "TrainingJobSummaries", "TrainingJobName"):
        name = job["TrainingJobName"]
        role = lambda n=name: sm.describe_training_job(TrainingJobName=n).get("RoleArn")  # noqa: E731
        if owner.owns(job["TrainingJobArn"], name, role):
            training.append(name)
            stop = lambda n=name: sm.stop_training_job(TrainingJobName=n)  # noqa: E731
            watch.append(_stop(report, Job("training-job", name), job["TrainingJobStatus"], stop))

    transform: list[str] = []
    for job in owner.candidates("list_transform_jobs", "TransformJobSummaries", "TransformJobName"):
        name = job["TransformJobName"]
        if owner.owns(job["TransformJobArn"], name):
            transform.append(name)
            stop = lambda n=name: sm.stop_transform_job(TransformJobName=n)  # noqa: E731
            watch.append(_stop(report, Job("transform-job", name), job["TransformJobStatus"], stop))
    return training, transform, [job for job in watch if job]


def _wait_for_jobs(sm, jobs: list[Job], clock: Clock, report: Report) -> None:
    """Poll until every job is final or gone, or the wait is over; what is left is reported."""
    pending = list(jobs)
    give_up = clock.until(JOB_WAIT_S)
    statuses: dict[Job, str] = {}
    while pending:
        for job in list(pending):
            status = _status(sm, job)
            if status is None or status in FINAL:
                pending.remove(job)
            else:
                statuses[job] = status
        if not pending or clock.now() + POLL_S > give_up:
            break
        logger.info("waiting for %d stopped job(s) to finish writing", len(pending))
        clock.sleep(POLL_S)
    for job in pending:
        report.left.append(
            f"{job.kind} {job.name} still {statuses[job]} (it may still write to the bucket)"
        )


def _delete_serving(clients: Clients, owner: Ownership, report: Report) -> tuple[list, list]:
    """Delete the stack's endpoints, configs and models; returns (endpoints, configs+models)."""
    sm = clients.sagemaker
    endpoints: list[str] = []
    for endpoint in owner.candidates("list_endpoints", "Endpoints", "EndpointName"):
        name = endpoint["EndpointName"]
        if owner.owns(endpoint["EndpointArn"], name):
            endpoints.append(name)
            if _attempt(
                report, f"delete endpoint {name}", lambda n=name: sm.delete_endpoint(EndpointName=n)
            ):
                report.deleted.append(f"endpoint/{name}")
    others: list[tuple[str, str]] = []
    for config in owner.candidates(
        "list_endpoint_configs", "EndpointConfigs", "EndpointConfigName"
    ):
        name = config["EndpointConfigName"]
        if owner.owns(config["EndpointConfigArn"], name):
            others.append(("endpoint-config", name))
            if _attempt(
                report,
                f"delete endpoint config {name}",
                lambda n=name: sm.delete_endpoint_config(EndpointConfigName=n),
            ):
                report.deleted.append(f"endpoint-config/{name}")
    for model in owner.candidates("list_models", "Models", "ModelName"):
        name = model["ModelName"]
        role = lambda n=name: sm.describe_model(ModelName=n).get("ExecutionRoleArn")  # noqa: E731
        if owner.owns(model["ModelArn"], name, role):
            others.append(("model", name))
            if _attempt(
                report, f"delete model {name}", lambda n=name: sm.delete_model(ModelName=n)
            ):
                report.deleted.append(f"model/{name}")
    return endpoints, others


def _still_there(sm, kind: str, name: str) -> str | None:
    """The status of a resource that should be gone (None: it is gone)."""
    try:
        if kind == "endpoint":
            return sm.describe_endpoint(EndpointName=name).get("EndpointStatus", "present")
        if kind == "endpoint-config":
            sm.describe_endpoint_config(EndpointConfigName=name)
        else:
            sm.describe_model(ModelName=name)
        return "present"
    except ClientError as exc:
        if _is_gone(exc):
            return None
        raise


def _verify_gone(sm, endpoints, others, clock: Clock, report: Report) -> None:
    """An endpoint stays Deleting a while after DeleteEndpoint; wait for it, bounded."""
    pending = [("endpoint", name) for name in endpoints] + list(others)
    give_up = clock.until(ENDPOINT_WAIT_S)
    statuses: dict[tuple[str, str], str] = {}
    while pending:
        for item in list(pending):
            status = _still_there(sm, *item)
            if status is None:
                pending.remove(item)
            else:
                statuses[item] = status
        if not pending or clock.now() + POLL_S > give_up:
            break
        clock.sleep(POLL_S)
    for kind, name in pending:
        report.left.append(f"{kind} {name} still there ({statuses[(kind, name)]})")


def _delete_log_streams(logs, group: str, prefix: str, report: Report) -> None:
    try:
        pages = logs.get_paginator("describe_log_streams").paginate(
            logGroupName=group, logStreamNamePrefix=prefix
        )
        names = [s["logStreamName"] for page in pages for s in page.get("logStreams", [])]
    except ClientError as exc:
        if not _is_gone(exc):
            report.errors.append(f"could not list log streams {group}/{prefix}: {exc}")
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
    clock: Clock,
    since: datetime | None = None,
) -> Report:
    report = Report()
    owner = Ownership(
        clients.sagemaker,
        tag_key=tag_key,
        stack_name=stack_name,
        prefix=name_prefix,
        role_arn=notebook_role_arn,
        since=since,
    )
    training, transform, stopping = _stop_jobs(clients, owner, report)
    endpoints, others = _delete_serving(clients, owner, report)
    _wait_for_jobs(clients.sagemaker, stopping, clock, report)
    _verify_gone(clients.sagemaker, endpoints, others, clock, report)
    _delete_logs(clients, training, transform, endpoints, report)
    for bucket in buckets:
        # Not caught: a bucket that cannot be emptied cannot be deleted either; say so here.
        report.emptied[bucket] = empty_bucket(clients.s3, bucket)
    return report


def handle(event: dict, clients: Clients, clock: Clock) -> dict:
    props = event.get("ResourceProperties", {})
    if event["RequestType"] == "Create":
        # The creation time bounds what the delete looks at (see Ownership.candidates).
        return {"PhysicalResourceId": physical_id(props.get("StackName", ""), datetime.now(UTC))}
    physical = event["PhysicalResourceId"]
    if event["RequestType"] != "Delete":
        return {"PhysicalResourceId": physical}
    report = clean(
        clients,
        stack_name=props["StackName"],
        tag_key=props["TagKey"],
        name_prefix=props.get("NamePrefix", ""),
        notebook_role_arn=props.get("NotebookRoleArn", ""),
        buckets=list(props.get("Buckets", [])),
        clock=clock,
        since=created_at(physical),
    )
    logger.info(
        "cleanup done",
        extra={
            "stopped": report.stopped,
            "deleted": report.deleted,
            "emptied": report.emptied,
            "errors": report.errors,
            "left": report.left,
        },
    )
    failure = report.failure()
    if failure:
        raise CleanupIncomplete(failure)
    return {"PhysicalResourceId": physical, "Data": report.as_data()}


def on_event(event, context):
    return handle(
        event,
        Clients(
            sagemaker=boto3.client("sagemaker"), logs=boto3.client("logs"), s3=boto3.client("s3")
        ),
        Clock.from_seconds_left(context.get_remaining_time_in_millis() / 1000),
    )
