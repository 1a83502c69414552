"""What every Lambda function of the stack shares: runtime, role, log group, JSON logs."""

from __future__ import annotations

import re
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

LAMBDA_SRC = Path(__file__).resolve().parents[1] / "lambda_src"
ASSET_EXCLUDE = ["__pycache__", "*.pyc"]
LOG_RETENTION = logs.RetentionDays.ONE_WEEK


def newest_python_runtime() -> lambda_.Runtime:
    """The highest PYTHON_3_N member of aws-cdk-lib's Runtime enum (follows CDK upgrades)."""
    versions = [
        int(m.group(1))
        for name in dir(lambda_.Runtime)
        if (m := re.fullmatch(r"PYTHON_3_(\d+)", name))
    ]
    return getattr(lambda_.Runtime, f"PYTHON_3_{max(versions)}")


def source_code(name: str) -> lambda_.Code:
    """Plain asset of lambda_src/<name> (no bundling: stdlib + boto3 only)."""
    return lambda_.Code.from_asset(str(LAMBDA_SRC / name), exclude=ASSET_EXCLUDE)


def log_group(scope: Construct, construct_id: str) -> logs.LogGroup:
    """A log group the stack owns and deletes with itself."""
    return logs.LogGroup(
        scope, construct_id, retention=LOG_RETENTION, removal_policy=cdk.RemovalPolicy.DESTROY
    )


def lambda_role(scope: Construct, construct_id: str, logs_to: logs.ILogGroup) -> iam.Role:
    """A Lambda execution role that may write to one log group and nothing else (yet).

    Used instead of the default role, which attaches the AWS managed
    AWSLambdaBasicExecutionRole policy (logs on every log group of the account).
    """
    role = iam.Role(scope, construct_id, assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    logs_to.grant(role, "logs:CreateLogStream", "logs:PutLogEvents")
    return role


def python_function(
    scope: Construct,
    construct_id: str,
    *,
    code: lambda_.Code,
    handler: str = "index.handler",
    description: str,
    environment: dict[str, str] | None = None,
    memory_size: int = 256,
    timeout: cdk.Duration | None = None,
) -> lambda_.Function:
    """A Python function on the newest runtime, with its own role and log group."""
    group = log_group(scope, f"{construct_id}Logs")
    role = lambda_role(scope, f"{construct_id}Role", group)
    return lambda_.Function(
        scope,
        construct_id,
        runtime=newest_python_runtime(),
        code=code,
        handler=handler,
        description=description,
        environment=environment,
        memory_size=memory_size,
        timeout=timeout or cdk.Duration.minutes(1),
        role=role,
        log_group=group,
        logging_format=lambda_.LoggingFormat.JSON,
    )
