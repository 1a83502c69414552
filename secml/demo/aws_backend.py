"""`secml demo --backend aws --stack NAME`: the same run against a deployed WorkshopStack.

The deployed Lambdas do the ingest in the account; their names and settings come from the stack's
resources and the functions' own configuration (not from a local synth), so the run uses what is
actually deployed. Training and the analysis run locally, on the tuples read from the bucket.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass

from secml.demo.lambdas import Invocation
from secml.demo.pipeline import (
    DemoOptions,
    DemoResult,
    StepTimer,
    read_back,
    train_and_analyse,
)
from secml.demo.template import HANDLER_MODULES
from secml.errors import SecmlError


@dataclass
class DeployedStack:
    resource_counts: Counter
    function_names: dict[str, str]  # CloudTrailIngest -> physical function name
    environments: dict[str, dict[str, str]]  # the deployed functions' environment variables
    buckets: list[str]


def discover(cfn, lam, stack_name: str) -> DeployedStack:
    from botocore.exceptions import ClientError

    counts: Counter = Counter()
    names: dict[str, str] = {}
    buckets: list[str] = []
    try:
        for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack_name):
            for r in page["StackResourceSummaries"]:
                counts[r["ResourceType"]] += 1
                if r["ResourceType"] == "AWS::S3::Bucket":
                    buckets.append(r.get("PhysicalResourceId", ""))
                if r["ResourceType"] != "AWS::Lambda::Function":
                    continue
                for name in HANDLER_MODULES:
                    if name in r["LogicalResourceId"]:
                        names[name] = r["PhysicalResourceId"]
    except ClientError as exc:
        raise SecmlError(f"stack {stack_name}: {exc.response['Error']['Message']}") from None
    missing = sorted(set(HANDLER_MODULES) - set(names))
    if missing:
        raise SecmlError(f"stack {stack_name} has no {', '.join(missing)} function")
    envs = {
        name: lam.get_function_configuration(FunctionName=fn)
        .get("Environment", {})
        .get("Variables", {})
        for name, fn in names.items()
    }
    return DeployedStack(counts, names, envs, sorted(b for b in buckets if b))


def invoke_deployed(lam, name: str, function_name: str) -> Invocation:
    started = time.perf_counter()
    response = lam.invoke(FunctionName=function_name, Payload=b"{}")
    raw = response["Payload"].read()
    try:
        payload = json.loads(raw or b"{}")
    except ValueError:
        payload = {"response": raw.decode(errors="replace")}
    if response.get("FunctionError"):
        message = payload.get("errorMessage", payload) if isinstance(payload, dict) else payload
        raise SecmlError(f"{name} ({function_name}) failed: {message}")
    summary = payload if isinstance(payload, dict) else {"response": payload}
    return Invocation(name, summary, [], time.perf_counter() - started)


def run_aws(options: DemoOptions, on_step=None, on_info=None) -> DemoResult:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    info = on_info or (lambda kind, value: None)
    result = DemoResult(options=options, dataset=None, stack_name=options.stack or "")
    timer = StepTimer(result, on_step)
    try:
        with timer.step("Find the deployed stack") as step:
            session = boto3.session.Session()
            cfn = session.client("cloudformation")
            # The ingest functions may run for up to 15 minutes on the large preset.
            lam = session.client(
                "lambda", config=Config(read_timeout=900, retries={"max_attempts": 0})
            )
            deployed = discover(cfn, lam, options.stack)
            counts, names, envs = (
                deployed.resource_counts,
                deployed.function_names,
                deployed.environments,
            )
            result.resource_counts = counts
            step.detail = (
                f"{sum(counts.values())} resources in {options.stack} ({session.region_name})"
            )
        info("resources", counts)

        with timer.step("Run the ingest Lambdas") as step:
            for name in ("CloudTrailIngest", "GuardDutyIngest"):
                invocation = invoke_deployed(lam, name, names[name])
                result.invocations.append(invocation)
                info("invocation", invocation)
            step.detail = "deployed functions " + ", ".join(names.values())

        s3 = session.client("s3")
        data_bucket = envs["GuardDutyIngest"]["INPUT_BUCKET"]
        with timer.step("Read tuples and findings") as step:
            data = read_back(
                result,
                s3,
                envs["CloudTrailIngest"],
                envs["GuardDutyIngest"],
                truth_location=(data_bucket, "truth.csv"),
                buckets=deployed.buckets,
            )
            step.detail = data.describe()
        result.dataset = f"s3://{data_bucket}/"
    except NoCredentialsError:
        raise SecmlError(
            "no AWS credentials found: set AWS_PROFILE or run `aws configure`"
        ) from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise SecmlError(
            f"AWS {exc.operation_name}: {error.get('Code')}: {error.get('Message')}"
        ) from None
    except BotoCoreError as exc:
        raise SecmlError(f"AWS: {exc}") from None
    train_and_analyse(result, timer, data)
    return result
