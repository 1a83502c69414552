"""Ingest: the two functions that turn CloudTrail logs and GuardDuty findings into tuples."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.data import CLOUDTRAIL_PREFIX, GUARDDUTY_PREFIX, INFER_PREFIX, TRAIN_PREFIX
from stacks.functions import python_function, source_code
from stacks.nag import acknowledge, acknowledge_s3_grant_actions, arn_ref

CLOUDTRAIL_OUTPUT_KEY = f"{TRAIN_PREFIX}cloudtrail_tuples.csv"
GUARDDUTY_OUTPUT_KEY = f"{INFER_PREFIX}guardduty_tuples.csv"

# Sized for the large preset (about 10M CloudTrail records): the most memory buys the most CPU.
INGEST_MEMORY_MB = 3008
INGEST_TIMEOUT = cdk.Duration.minutes(15)


def function_code(name: str, *, solutions: bool) -> lambda_.Code:
    """The code of ingest function `name` (a folder under lambda_src/).

    The single place that decides which code is deployed. `solutions=False` (the default of
    the app) is meant to deploy the exercise version attendees complete in the console,
    `solutions=True` the completed one; until the exercise staging exists both deploy
    lambda_src/<name> as it is.
    """
    del solutions  # both modes deploy the same code until exercise staging lands
    return source_code(name)


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
        data_bucket.grant_read(fn, f"{input_prefix}*")
        tuples_bucket.grant_put(fn, output_key)
        acknowledge_s3_grant_actions(
            fn.role, "s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:Abort*"
        )
        acknowledge(
            fn.role,
            f"AwsSolutions-IAM5[Resource::{arn_ref(data_bucket)}/{input_prefix}*]",
            f"The function reads every object under {input_prefix} (the dataset's daily "
            "delivery files, names not known at synth time) and nothing outside it.",
        )
        return fn
