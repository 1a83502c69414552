"""`python -m secml verify-clean`: is anything of a workshop stack left in the account?

Run after `cdk destroy`. Looks for the stack itself, resources tagged secml:stack=<stack>, and
resources named like the stack's (CloudFormation-generated names start with the stack name) or
like the notebook's (the secml- prefix): buckets, functions, log groups, roles, SageMaker
endpoints, endpoint configs, models and running jobs. Prints each leftover, exits 1 if any.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass

from secml.errors import SecmlError

DEFAULT_STACK = "SecmlWorkshop"
TAG_KEY = "secml:stack"
NOTEBOOK_PREFIX = "secml-"
RUNNING = {"InProgress", "Stopping"}


@dataclass(frozen=True, order=True)
class Leftover:
    kind: str
    name: str


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify-clean",
        help="list what a workshop stack left in the account; exit 1 if anything",
        description=__doc__.split("\n\n")[1],
    )
    parser.add_argument(
        "--stack", default=DEFAULT_STACK, help=f"stack name (default {DEFAULT_STACK})"
    )
    parser.add_argument("--region", help="AWS region (default: the AWS_REGION / profile region)")
    parser.set_defaults(func=run)


def _kind_of(arn: str) -> str:
    parts = arn.split(":", 5)
    service = parts[2] if len(parts) > 2 else "?"
    resource = parts[5] if len(parts) > 5 else ""
    resource_type = (
        resource.split("/", 1)[0].split(":", 1)[0] if "/" in resource or ":" in resource else ""
    )
    return f"{service}:{resource_type}" if resource_type else service


def _running_job(sagemaker, arn: str) -> bool | None:
    """For SageMaker job ARNs: whether it still runs (finished jobs are kept history). Else None."""
    resource = arn.split(":", 5)[5]
    kind, _, name = resource.partition("/")
    if kind == "training-job":
        return sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] in RUNNING
    if kind == "transform-job":
        return (
            sagemaker.describe_transform_job(TransformJobName=name)["TransformJobStatus"] in RUNNING
        )
    if kind == "hyper-parameter-tuning-job":
        described = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        return described["HyperParameterTuningJobStatus"] in RUNNING
    return None


def _tagged(session, stack: str) -> list[Leftover]:
    tagging = session.client("resourcegroupstaggingapi")
    sagemaker = session.client("sagemaker")
    found = []
    pages = tagging.get_paginator("get_resources").paginate(
        TagFilters=[{"Key": TAG_KEY, "Values": [stack]}]
    )
    for page in pages:
        for item in page.get("ResourceTagMappingList", []):
            arn = item["ResourceARN"]
            if arn.startswith("arn:aws:sagemaker:") and _running_job(sagemaker, arn) is False:
                continue
            found.append(Leftover(_kind_of(arn), arn))
    return found


def _named(session, stack: str) -> list[Leftover]:
    found: list[Leftover] = []
    cfn = session.client("cloudformation")
    try:
        for described in cfn.describe_stacks(StackName=stack)["Stacks"]:
            if described["StackStatus"] != "DELETE_COMPLETE":
                found.append(Leftover("cloudformation:stack", described["StackName"]))
    except cfn.exceptions.ClientError as exc:
        if "does not exist" not in str(exc):
            raise

    for bucket in session.client("s3").list_buckets().get("Buckets", []):
        if bucket["Name"].startswith(f"{stack.lower()}-"):
            found.append(Leftover("s3:bucket", bucket["Name"]))

    for page in session.client("lambda").get_paginator("list_functions").paginate():
        for fn in page.get("Functions", []):
            if fn["FunctionName"].startswith(f"{stack}-"):
                found.append(Leftover("lambda:function", fn["FunctionName"]))

    logs = session.client("logs")
    for prefix in (f"/aws/lambda/{stack}-", f"/aws/sagemaker/Endpoints/{NOTEBOOK_PREFIX}"):
        for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=prefix):
            for group in page.get("logGroups", []):
                found.append(Leftover("logs:log-group", group["logGroupName"]))

    for page in session.client("iam").get_paginator("list_roles").paginate():
        for role in page.get("Roles", []):
            if role["RoleName"].startswith(f"{stack}-"):
                found.append(Leftover("iam:role", role["RoleName"]))

    sagemaker = session.client("sagemaker")
    listings = (
        ("list_endpoints", "Endpoints", "EndpointName", "sagemaker:endpoint"),
        (
            "list_endpoint_configs",
            "EndpointConfigs",
            "EndpointConfigName",
            "sagemaker:endpoint-config",
        ),
        ("list_models", "Models", "ModelName", "sagemaker:model"),
    )
    for operation, key, name_key, kind in listings:
        for page in sagemaker.get_paginator(operation).paginate(NameContains=NOTEBOOK_PREFIX):
            for item in page.get(key, []):
                if item[name_key].startswith(NOTEBOOK_PREFIX):
                    found.append(Leftover(kind, item[name_key]))
    return found


def find_leftovers(session, stack: str) -> list[Leftover]:
    by_name = {leftover.name: leftover for leftover in _named(session, stack)}
    for leftover in _tagged(session, stack):
        # A tagged resource's ARN ends with the name a name match found; keep one of the two.
        if not any(leftover.name.endswith((f"/{n}", f":{n}", f":::{n}")) for n in by_name):
            by_name[leftover.name] = leftover
    return sorted(by_name.values())


# CloudFormation's stack-name rule: an empty or odd name would match other stacks' resources by
# prefix (every function name starts with "").
STACK_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")


def run(args: argparse.Namespace) -> int:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    if not STACK_NAME_RE.fullmatch(args.stack):
        raise SecmlError(
            f"--stack {args.stack[:60]!r} is not a CloudFormation stack name "
            "(a letter, then letters, digits and hyphens, at most 128)"
        )

    session = boto3.session.Session(region_name=args.region)
    region = session.region_name
    if not region:
        raise SecmlError("no AWS region: pass --region or set AWS_REGION")
    try:
        leftovers = find_leftovers(session, args.stack)
    except NoCredentialsError:
        raise SecmlError("no AWS credentials (set AWS_PROFILE or the AWS_* variables)") from None
    except ClientError as exc:
        raise SecmlError(f"AWS refused a call: {exc}") from None
    except BotoCoreError as exc:
        raise SecmlError(str(exc)) from None
    for leftover in leftovers:
        print(f"{leftover.kind}\t{leftover.name}")
    if leftovers:
        print(f"{len(leftovers)} leftover(s) of stack {args.stack} in {region}", file=sys.stderr)
        return 1
    print(f"clean: nothing of stack {args.stack} left in {region}")
    return 0
