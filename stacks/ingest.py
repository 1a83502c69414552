"""Ingest: the two functions that turn CloudTrail logs and GuardDuty findings into tuples."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from lambda_src.staging import stage_function
from stacks.data import CLOUDTRAIL_PREFIX, GUARDDUTY_PREFIX, INFER_PREFIX, TRAIN_PREFIX
from stacks.functions import ASSET_EXCLUDE, newest_python_runtime, python_function
from stacks.nag import acknowledge, arn_ref
from stacks.s3_access import read_prefix, write_keys

CLOUDTRAIL_OUTPUT_KEY = f"{TRAIN_PREFIX}cloudtrail_tuples.csv"
GUARDDUTY_OUTPUT_KEY = f"{INFER_PREFIX}guardduty_tuples.csv"

# Sized for the large preset (about 10M CloudTrail records): the most memory buys the most CPU.
INGEST_MEMORY_MB = 3008
INGEST_TIMEOUT = cdk.Duration.minutes(15)


def function_code(name: str, *, solutions: bool) -> lambda_.Code:
    """The code of ingest function `name`: the single place that decides what is deployed.

    `solutions=False` (the app's default) deploys the exercise version attendees complete in the
    console (the workshop's TODO lines commented out), `solutions=True` the completed code. Both
    are staged from the one source in lambda_src/<name> (see lambda_src/staging.py), with the
    packages the function uses where installed, built for the runtime's Python.
    """
    python = newest_python_runtime().name.removeprefix("python")  # "python3.14" -> "3.14"
    folder = stage_function(name, solutions=solutions, packages=python)
    return lambda_.Code.from_asset(str(folder), exclude=ASSET_EXCLUDE)


class Ingest(Construct):
    """CloudTrailIngest (data cloudtrail/ -> tuples train/) and GuardDutyIngest (-> infer/)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        data_bucket: s3.IBucket,
        tuples_bucket: s3.IBucket,
        solutions: bool = False,
        ipv4_only: bool = True,
    ) -> None:
        super().__init__(scope, construct_id)
        self.solutions = solutions
        self.cloudtrail_fn = self._ingest_function(
            "CloudTrailIngest",
            source="cloudtrail_ingest",
            description="Workshop: CloudTrail logs to principal,ip training tuples",
            data_bucket=data_bucket,
            input_prefix=CLOUDTRAIL_PREFIX,
            tuples_bucket=tuples_bucket,
            output_key=CLOUDTRAIL_OUTPUT_KEY,
            solutions=solutions,
            ipv4_only=ipv4_only,
        )
        self.guardduty_fn = self._ingest_function(
            "GuardDutyIngest",
            source="guardduty_ingest",
            description="Workshop: GuardDuty findings to principal,ip scoring tuples",
            data_bucket=data_bucket,
            input_prefix=GUARDDUTY_PREFIX,
            tuples_bucket=tuples_bucket,
            output_key=GUARDDUTY_OUTPUT_KEY,
            solutions=solutions,
            ipv4_only=ipv4_only,
        )

    def _ingest_function(
        self,
        construct_id: str,
        *,
        source: str,
        description: str,
        data_bucket: s3.IBucket,
        input_prefix: str,
        tuples_bucket: s3.IBucket,
        output_key: str,
        solutions: bool,
        ipv4_only: bool,
    ) -> lambda_.Function:
        fn = python_function(
            self,
            construct_id,
            code=function_code(source, solutions=solutions),
            description=description,
            environment={
                "INPUT_BUCKET": data_bucket.bucket_name,
                "INPUT_PREFIX": input_prefix,
                "OUTPUT_BUCKET": tuples_bucket.bucket_name,
                "OUTPUT_KEY": output_key,
                "IPV4_ONLY": str(ipv4_only).lower(),
            },
            memory_size=INGEST_MEMORY_MB,
            timeout=INGEST_TIMEOUT,
        )
        for statement in [
            *read_prefix(data_bucket, input_prefix),
            write_keys(tuples_bucket, output_key),
        ]:
            fn.add_to_role_policy(statement)
        acknowledge(
            fn.role,
            f"AwsSolutions-IAM5[Resource::{arn_ref(data_bucket)}/{input_prefix}*]",
            f"The function reads every object under {input_prefix} (the dataset's daily "
            "delivery files, names not known at synth time) and nothing outside it.",
        )
        return fn
