"""Cleanup: on `cdk destroy`, remove what the notebook created outside CloudFormation.

Also empties both workshop buckets (instead of aws-cdk-lib's auto_delete_objects, whose
provider function cannot be given a log group and so would leave /aws/lambda/... behind).

Timeouts, so that a destroy never waits CloudFormation's default hour for an answer: the handler
stops waiting RESERVE_S before its own HANDLER_TIMEOUT, which is well under the provider
framework's onEvent timeout (15 minutes in aws-cdk-lib), and CloudFormation itself gives up after
SERVICE_TIMEOUT (the ServiceTimeout property, 1 to 3600 seconds, default 3600:
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-cloudformation-customresource.html).
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.functions import custom_resource_provider, python_function, source_code
from stacks.nag import acknowledge, arn_ref
from stacks.notebook import (
    ENDPOINT_LOG_GROUPS_FINDING,
    RESOURCE_NAME_PREFIX,
)

HANDLER_TIMEOUT = cdk.Duration.minutes(10)
SERVICE_TIMEOUT = cdk.Duration.minutes(16)
# Kinds the cleanup identifies by tag only: deleting them is allowed only when tagged.
TAG_ONLY_TYPES = ("endpoint", "endpoint-config", "transform-job")
ROLE_RECORDING_TYPES = ("training-job", "hyper-parameter-tuning-job", "model")
# The shared log groups whose secml-* job streams the handler deletes.
JOB_LOG_GROUPS = ("/aws/sagemaker/TrainingJobs", "/aws/sagemaker/TransformJobs")


# SageMaker names each endpoint's log group after the endpoint.
ENDPOINT_LOG_GROUP_PREFIX = "/aws/sagemaker/Endpoints/"


def compact_arn(service: str, resource: str) -> str:
    """An ARN in the stack's partition, region and account, as Fn::Sub.

    Not Stack.format_arn: its Fn::Join takes half again as many bytes per ARN, and the fleet
    template must stay under CloudFormation's 51,200-byte TemplateBody limit
    (tests/test_fleet_package.py). cdk-nag prints both forms alike in its finding ids.
    """
    return cdk.Fn.sub(
        f"arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:{resource}"
    )


def log_group_finding(name: str) -> str:
    """cdk-nag's finding id for a policy on this log group (or stream) name pattern."""
    return (
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:"
        f"<AWS::AccountId>:log-group:{name}]"
    )


class Cleanup(Construct):
    """Custom resource whose delete runs lambda_src/cleanup (see its docstring)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        buckets: Sequence[s3.IBucket],
        notebook_role: iam.IRole,
        tag_key: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.handler = python_function(
            self,
            "Handler",
            code=source_code("cleanup"),
            handler="index.on_event",
            description="Workshop: on stack delete, removes the notebook's SageMaker leftovers",
            memory_size=512,
            timeout=HANDLER_TIMEOUT,
        )
        self._grant(stack, buckets, tag_key)

        provider = custom_resource_provider(self, self.handler)
        self.resource = cdk.CustomResource(
            self,
            "Resource",
            service_token=provider.service_token,
            resource_type="Custom::WorkshopCleanup",
            service_timeout=SERVICE_TIMEOUT,
            properties={
                "StackName": stack.stack_name,
                "TagKey": tag_key,
                "NamePrefix": RESOURCE_NAME_PREFIX,
                "NotebookRoleArn": notebook_role.role_arn,
                "Buckets": [bucket.bucket_name for bucket in buckets],
            },
        )
        # Deleted before the buckets and the role it empties and judges by (the references
        # imply this already; explicit, because it is the point of the construct).
        for bucket in buckets:
            self.resource.node.add_dependency(bucket)
        self.resource.node.add_dependency(notebook_role)

    def must_outlive(self, *constructs: Construct) -> None:
        """These depend on the cleanup: created after it, deleted before it runs.

        For the notebook (nothing new appears while the cleanup runs) and for everything that
        writes into a bucket at deploy time (a create that fails after the write rolls back only
        if the cleanup exists to empty the bucket).
        """
        for construct in constructs:
            construct.node.add_dependency(self.resource)

    def _grant(self, stack: cdk.Stack, buckets: Sequence[s3.IBucket], tag_key: str) -> None:
        """Only what lambda_src/cleanup calls, only on secml-* names (see its docstring)."""

        def arn(resource_type: str) -> str:
            return compact_arn("sagemaker", f"{resource_type}/{RESOURCE_NAME_PREFIX}*")

        def log_arn(name: str) -> str:
            return compact_arn("logs", f"log-group:{name}")

        policy = [
            iam.PolicyStatement(
                # List calls take no resource ARN.
                actions=[
                    "sagemaker:ListTrainingJobs",
                    "sagemaker:ListHyperParameterTuningJobs",
                    "sagemaker:ListTransformJobs",
                    "sagemaker:ListEndpoints",
                    "sagemaker:ListEndpointConfigs",
                    "sagemaker:ListModels",
                ],
                resources=["*"],
            ),
            iam.PolicyStatement(
                actions=[
                    "sagemaker:ListTags",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:DescribeHyperParameterTuningJob",
                    "sagemaker:DescribeTransformJob",
                    "sagemaker:DescribeEndpoint",
                    "sagemaker:DescribeEndpointConfig",
                    "sagemaker:DescribeModel",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:StopHyperParameterTuningJob",
                    "sagemaker:DeleteModel",
                ],
                resources=[arn(t) for t in (*ROLE_RECORDING_TYPES, *TAG_ONLY_TYPES)],
            ),
            iam.PolicyStatement(
                # Endpoints, their configs and transform jobs are the stack's only if tagged.
                actions=[
                    "sagemaker:DeleteEndpoint",
                    "sagemaker:DeleteEndpointConfig",
                    "sagemaker:StopTransformJob",
                ],
                resources=[arn(t) for t in TAG_ONLY_TYPES],
                conditions={"StringEquals": {f"aws:ResourceTag/{tag_key}": stack.stack_name}},
            ),
            iam.PolicyStatement(
                # Listing a job's streams (by prefix) names the shared group. In IAM policies
                # CloudWatch Logs wants the group's ARN with a trailing ":*" (as aws-cdk-lib's
                # LogGroup grants write it): https://docs.aws.amazon.com/AmazonCloudWatch/
                # latest/logs/iam-access-control-overview-cwl.html
                actions=["logs:DescribeLogStreams"],
                resources=[log_arn(f"{group}:*") for group in JOB_LOG_GROUPS],
            ),
            iam.PolicyStatement(
                actions=["logs:DeleteLogStream"],
                resources=[
                    log_arn(f"{group}:log-stream:{RESOURCE_NAME_PREFIX}*")
                    for group in JOB_LOG_GROUPS
                ],
            ),
            iam.PolicyStatement(
                actions=["logs:DeleteLogGroup"],
                resources=[log_arn(f"{ENDPOINT_LOG_GROUP_PREFIX}{RESOURCE_NAME_PREFIX}*")],
            ),
            iam.PolicyStatement(
                actions=["s3:ListBucket", "s3:ListBucketVersions"],
                resources=[bucket.bucket_arn for bucket in buckets],
            ),
            iam.PolicyStatement(
                actions=["s3:DeleteObject", "s3:DeleteObjectVersion"],
                resources=[bucket.arn_for_objects("*") for bucket in buckets],
            ),
        ]
        for statement in policy:
            self.handler.add_to_role_policy(statement)

        role = self.handler.role
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "SageMaker's List* calls have no resource ARN; the handler lists to find what the "
            "stack's notebook made.",
        )
        for resource_type in (*ROLE_RECORDING_TYPES, *TAG_ONLY_TYPES):
            acknowledge(
                role,
                "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:"
                f"<AWS::AccountId>:{resource_type}/{RESOURCE_NAME_PREFIX}*]",
                "The notebook names each job, model and endpoint at run time "
                "(secml-<purpose>-<time>-<random>); the handler also checks the stack tag (or "
                "the notebook role) before it stops or deletes one, and deletes of tag-only "
                "kinds are conditioned on the tag.",
            )
        for group in JOB_LOG_GROUPS:
            acknowledge(
                role,
                log_group_finding(f"{group}:*"),
                "DescribeLogStreams only (read): CloudWatch Logs may authorize it on the group's "
                "ARN ending in ':*'; the handler lists just the streams of the stack's jobs.",
            )
            acknowledge(
                role,
                log_group_finding(f"{group}:log-stream:{RESOURCE_NAME_PREFIX}*"),
                "DeleteLogStream only: SageMaker names a job's streams <job name>/<host>-<n> at "
                "run time; the pattern is the streams of secml- jobs.",
            )
        acknowledge(
            role,
            ENDPOINT_LOG_GROUPS_FINDING,
            "DeleteLogGroup only: SageMaker names an endpoint's log group after the endpoint, "
            "which the notebook names at run time; the pattern is the secml- endpoints' groups.",
        )
        for bucket in buckets:
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::{arn_ref(bucket)}/*]",
                "Emptying the workshop bucket before CloudFormation deletes it means deleting "
                "every key in it.",
            )
