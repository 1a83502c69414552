"""cdk-nag v3 acknowledgments: one helper, so every one carries a reason and names its finding."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct

# What aws-cdk-lib's Bucket.grant_read / grant_put / grant_read_write put in a policy.
S3_GRANT_ACTIONS = ("s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:DeleteObject*", "s3:Abort*")
S3_GRANT_REASON = (
    "Action group written by aws-cdk-lib's Bucket grant methods (for example s3:GetObject* = "
    "GetObject, GetObjectVersion, GetObjectTagging, ...); the statement's resources limit it to "
    "one workshop bucket and key pattern."
)


def acknowledge(construct: IConstruct, finding: str, reason: str) -> None:
    """Acknowledge one finding (`AwsSolutions-IAM5[...]` or a rule id) on construct and below."""
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=finding, reason=reason))


def acknowledge_s3_grant_actions(construct: IConstruct, *actions: str) -> None:
    for action in actions:
        if action not in S3_GRANT_ACTIONS:
            raise ValueError(f"{action} is not an action group of the S3 grant methods")
        acknowledge(construct, f"AwsSolutions-IAM5[Action::{action}]", S3_GRANT_REASON)


def arn_ref(resource: IConstruct) -> str:
    """How cdk-nag prints `Fn::GetAtt <resource>.Arn` inside a finding id."""
    cfn = resource.node.default_child if not isinstance(resource, cdk.CfnElement) else resource
    assert isinstance(cfn, cdk.CfnElement)
    return f"<{cdk.Stack.of(cfn).resolve(cfn.logical_id)}.Arn>"
