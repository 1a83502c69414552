"""GuardDuty: a detector in the stack's region, created only if the account has none."""

from __future__ import annotations

import enum

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.functions import custom_resource_provider, python_function, source_code
from stacks.nag import acknowledge


class SampleFindings(enum.Enum):
    """Where the detector handler generates GuardDuty's sample findings (values as it reads them).

    FORCE also writes them into a detector that was there before the stack: in an account whose
    organisation runs GuardDuty centrally, every deploy then sends one [SAMPLE] finding of every
    type to the administrator account, Security Hub and EventBridge.
    """

    NEVER = "false"
    IF_CREATED = "true"
    FORCE = "force"


# CloudFormation waits this long for the handler's answer instead of the default hour.
SERVICE_TIMEOUT = cdk.Duration.minutes(5)


class GuardDuty(Construct):
    """Custom resource around lambda_src/guardduty_detector (see its docstring for why)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        tag_key: str,
        sample_findings: SampleFindings = SampleFindings.IF_CREATED,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.sample_findings = sample_findings
        self.handler = python_function(
            self,
            "DetectorHandler",
            code=source_code("guardduty_detector"),
            handler="index.on_event",
            description="Workshop: enables GuardDuty unless a detector exists; sample findings",
            timeout=cdk.Duration.minutes(2),
        )
        detector_arn = stack.format_arn(service="guardduty", resource="detector", resource_name="*")
        self.handler.add_to_role_policy(
            iam.PolicyStatement(
                # ListDetectors and CreateDetector take no resource ARN.
                actions=["guardduty:ListDetectors", "guardduty:CreateDetector"],
                resources=["*"],
            )
        )
        self.handler.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "guardduty:GetDetector",
                    "guardduty:CreateSampleFindings",
                    "guardduty:DeleteDetector",
                    "guardduty:TagResource",
                ],
                resources=[detector_arn],
            )
        )
        self.handler.add_to_role_policy(
            iam.PolicyStatement(
                # Enabling GuardDuty the first time creates its service-linked role.
                actions=["iam:CreateServiceLinkedRole"],
                resources=[
                    stack.format_arn(
                        service="iam",
                        region="",
                        resource="role",
                        resource_name="aws-service-role/guardduty.amazonaws.com/"
                        "AWSServiceRoleForAmazonGuardDuty",
                    )
                ],
                conditions={"StringEquals": {"iam:AWSServiceName": "guardduty.amazonaws.com"}},
            )
        )

        acknowledge(
            self.handler.role,
            "AwsSolutions-IAM5[Resource::*]",
            "guardduty:ListDetectors and guardduty:CreateDetector have no resource ARN.",
        )
        acknowledge(
            self.handler.role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:guardduty:<AWS::Region>:"
            "<AWS::AccountId>:detector/*]",
            "The detector id is known only at deploy time (found or created by this handler); "
            "the ARN is limited to detectors of this account and region.",
        )

        provider = custom_resource_provider(self, self.handler)
        self.detector = cdk.CustomResource(
            self,
            "Detector",
            service_token=provider.service_token,
            resource_type="Custom::GuardDutyDetector",
            service_timeout=SERVICE_TIMEOUT,
            properties={
                "SampleFindings": sample_findings.value,
                "Tags": {tag_key: stack.stack_name},
            },
        )
        self.detector_id = self.detector.get_att_string("DetectorId")
        self.created_by_stack = self.detector.get_att_string("CreatedByStack")
