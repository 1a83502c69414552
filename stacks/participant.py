"""Participant: the attendee's permissions, attached to a role the event platform creates.

Workshop Studio (and facilitators using `secml fleet`) sign attendees in with a role that exists
before this stack (e.g. ``WSParticipantRole``). The template takes its name as the optional
parameter ``ParticipantRoleName``; when it is set, a managed policy with what the exercises use
is attached to it. A CloudFormation condition is the right tool here: the template must stay
parameterised, one template for every account (conventions.md, "Decide at synth time").

Scoped to this stack's resources where the service supports resource-level permissions; the
console listing calls (``List*``/``Describe*`` that take no resource) need ``*``.
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

PARTICIPANT_ROLE_PARAMETER = "ParticipantRoleName"

# What the attendee guide (docs/workshop.md) has them do in each console; the step-by-step table
# that derives these lists is tests/attendee_steps.py.
GUARDDUTY_READ = [
    "guardduty:ListDetectors",
    "guardduty:GetDetector",
    "guardduty:GetAdministratorAccount",
    "guardduty:GetRemainingFreeTrialDays",
    "guardduty:ListFindings",
    "guardduty:GetFindings",
    "guardduty:GetFindingsStatistics",
    "guardduty:ListFilters",
]
LAMBDA_ON_FUNCTION = [
    "lambda:GetFunction",
    "lambda:GetFunctionConfiguration",
    "lambda:ListVersionsByFunction",
    "lambda:ListAliases",
    "lambda:GetPolicy",
    "lambda:ListTags",
    "lambda:InvokeFunction",
    "lambda:UpdateFunctionCode",
]
S3_ON_BUCKET = ["s3:ListBucket", "s3:GetBucketLocation"]
S3_ON_OBJECTS = ["s3:GetObject"]
NOTEBOOK_ON_INSTANCE = [
    "sagemaker:CreatePresignedNotebookInstanceUrl",
    "sagemaker:DescribeNotebookInstance",
    # The instances stop themselves after an idle hour, often before the workshop starts.
    "sagemaker:StartNotebookInstance",
]
LOGS_ON_GROUP = ["logs:DescribeLogStreams", "logs:GetLogEvents", "logs:FilterLogEvents"]
# The stack's outputs (names of everything the guide sends attendees to).
STACK_OUTPUTS = ["cloudformation:DescribeStacks"]
# The consoles' lists: these calls take no resource ARN.
CONSOLE_LISTING = [
    "cloudformation:ListStacks",
    "lambda:ListFunctions",
    "s3:ListAllMyBuckets",
    "sagemaker:ListNotebookInstances",
    "logs:DescribeLogGroups",
]


class Participant(Construct):
    """The ``ParticipantRoleName`` parameter and, when it is set, the attendee policy."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        ingest_functions: Sequence[lambda_.IFunction] = (),
        buckets: Sequence[s3.IBucket] = (),
        notebook_instance_arn: str | None = None,
        log_groups: Sequence[logs.ILogGroup] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        role_name = cdk.CfnParameter(
            stack,
            PARTICIPANT_ROLE_PARAMETER,
            type="String",
            default="",
            allowed_pattern=r"^[\w+=,.@-]{0,64}$",
            description="Existing IAM role the attendee signs in with (e.g. WSParticipantRole); "
            "empty: attach no participant policy.",
        )
        has_role = cdk.CfnCondition(
            self,
            "HasParticipantRole",
            expression=cdk.Fn.condition_not(cdk.Fn.condition_equals(role_name.value_as_string, "")),
        )

        statements = [
            iam.PolicyStatement(sid="GuardDutyExercise", actions=GUARDDUTY_READ, resources=["*"]),
            iam.PolicyStatement(sid="ConsoleListing", actions=CONSOLE_LISTING, resources=["*"]),
            iam.PolicyStatement(
                sid="StackOutputs", actions=STACK_OUTPUTS, resources=[cdk.Aws.STACK_ID]
            ),
        ]
        if ingest_functions:
            statements.append(
                iam.PolicyStatement(
                    sid="IngestFunctions",
                    actions=LAMBDA_ON_FUNCTION,
                    resources=[fn.function_arn for fn in ingest_functions],
                )
            )
        if buckets:
            statements.append(
                iam.PolicyStatement(
                    sid="WorkshopBuckets",
                    actions=S3_ON_BUCKET,
                    resources=[b.bucket_arn for b in buckets],
                )
            )
            statements.append(
                iam.PolicyStatement(
                    sid="WorkshopObjects",
                    actions=S3_ON_OBJECTS,
                    resources=[b.arn_for_objects("*") for b in buckets],
                )
            )
        if notebook_instance_arn:
            statements.append(
                iam.PolicyStatement(
                    sid="OpenNotebook",
                    actions=NOTEBOOK_ON_INSTANCE,
                    resources=[notebook_instance_arn],
                )
            )
        if log_groups:
            statements.append(
                iam.PolicyStatement(
                    sid="FunctionLogs",
                    actions=LOGS_ON_GROUP,
                    resources=[lg.log_group_arn for lg in log_groups],
                )
            )

        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description="secml workshop: what the attendee's exercises use",
            statements=statements,
            roles=[iam.Role.from_role_name(self, "Role", role_name.value_as_string)],
        )
        self.policy.node.default_child.cfn_options.condition = has_role

        self._acknowledge(buckets, log_groups)

    def _acknowledge(
        self, buckets: Sequence[s3.IBucket], log_groups: Sequence[logs.ILogGroup]
    ) -> None:
        stack = cdk.Stack.of(self)
        acks = [
            cdk.Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="The consoles' list calls (stacks, functions, buckets, notebook "
                "instances, log groups) take no resource ARN; GuardDuty finding reads are "
                "account-wide and the detector may predate this stack.",
            )
        ]
        for bucket in buckets:
            child = bucket.node.default_child
            if isinstance(child, cdk.CfnElement):
                acks.append(
                    cdk.Acknowledgment(
                        id=f"AwsSolutions-IAM5[Resource::<{stack.get_logical_id(child)}.Arn>/*]",
                        reason="Attendees read every object of this stack's own workshop buckets.",
                    )
                )
        for group in log_groups:
            child = group.node.default_child
            if isinstance(child, cdk.CfnElement):
                acks.append(
                    cdk.Acknowledgment(
                        id=f"AwsSolutions-IAM5[Resource::<{stack.get_logical_id(child)}.Arn>]",
                        reason="A log group ARN ends in ':*' (its streams); only this stack's "
                        "ingest log groups are listed.",
                    )
                )
        cdk.Validations.of(self.policy).acknowledge(*acks)
