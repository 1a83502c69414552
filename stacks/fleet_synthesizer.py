"""A bootstrap-free synthesizer whose file assets live in a bucket named by stack parameters.

Event platforms (AWS Workshop Studio, `secml fleet provision`) deploy one CloudFormation
template into many accounts that were never `cdk bootstrap`-ed. They copy the assets once to a
central bucket and pass its location as the parameters ``AssetsBucketName`` and
``AssetsBucketPrefix`` (the prefix ends with ``/``).

``CliCredentialsStackSynthesizer`` is the base because it has no bootstrap contract in the
template: no ``BootstrapVersion`` parameter or rule, and no deploy / publishing role ARNs in the
cloud assembly. Every asset location it emits contains ``${AssetsBucketName}`` or
``${AssetsBucketPrefix}`` and the CDK wraps such strings in ``Fn::Sub``, which resolves them
against the two parameters added in ``bind``.
"""

from __future__ import annotations

import json

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam
from constructs import IConstruct

ASSETS_BUCKET_PARAMETER = "AssetsBucketName"
ASSETS_PREFIX_PARAMETER = "AssetsBucketPrefix"
# Empty, or folders of letters, digits, '.', '_' and '-', each ending with '/'. The prefix ends
# up inside single quotes in the notebook's on-create shell script (the notebook's object key),
# so quotes, spaces, '$', '`', '\\' and the like must never reach it.
ASSETS_PREFIX_PATTERN = r"^([A-Za-z0-9_.-]+/)*$"


class AssetParameterSynthesizer(cdk.CliCredentialsStackSynthesizer):
    def __init__(self) -> None:
        super().__init__(
            file_assets_bucket_name=f"${{{ASSETS_BUCKET_PARAMETER}}}",
            bucket_prefix=f"${{{ASSETS_PREFIX_PARAMETER}}}",
        )

    def bind(self, stack: cdk.Stack) -> None:
        super().bind(stack)
        cdk.CfnParameter(
            stack,
            ASSETS_BUCKET_PARAMETER,
            type="String",
            min_length=3,
            description="S3 bucket holding this template's assets (Lambda code, data), "
            "in the stack's region.",
        )
        cdk.CfnParameter(
            stack,
            ASSETS_PREFIX_PARAMETER,
            type="String",
            default="",
            allowed_pattern=ASSETS_PREFIX_PATTERN,
            constraint_description="empty, or folders of letters, digits, '.', '_' and '-', "
            "each ending with '/' (no quotes, spaces or other shell characters)",
            description="Key prefix of the assets in AssetsBucketName, ending with '/'.",
        )
        # CDK's asset readers (the BucketDeployment handler) get s3:GetObject*, s3:GetBucket*
        # and s3:List* on the whole assets bucket; the aspect narrows that to GetObject on the
        # template's own assets.
        cdk.Aspects.of(stack).add(OnlyOwnAssets())
        cdk.Validations.of(stack).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::<AssetsBucketName>/"
                "<AssetsBucketPrefix>*]",
                reason="Asset readers need the template's own assets, the objects under "
                "AssetsBucketPrefix in the central assets bucket, whose names are content "
                "hashes (the same grant as on the CDK bootstrap bucket in a normal deploy).",
            )
        )


@jsii.implements(cdk.IAspect)
class OnlyOwnAssets:
    """Rewrites every policy statement on the assets bucket to s3:GetObject on the prefix.

    aws-cdk-lib grants asset readers (`Source.asset` of a BucketDeployment) read on the whole
    bucket the synthesizer names. Here that bucket is shared by every template an event
    platform hosts, so the readers get exactly `${AssetsBucketName}/${AssetsBucketPrefix}*`.
    """

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, iam.CfnPolicy):
            return
        document = cdk.Stack.of(node).resolve(node.policy_document)
        statements = document.get("Statement", [])
        changed = False
        for index, statement in enumerate(statements):
            resources = statement.get("Resource", [])
            resources = resources if isinstance(resources, list) else [resources]
            if not any(_is_assets_bucket(r) for r in resources):
                continue
            if not all(_is_assets_bucket(r) for r in resources):
                raise ValueError(f"{node.node.path}: a statement mixes the assets bucket")
            statements[index] = {
                "Action": "s3:GetObject",
                "Effect": "Allow",
                "Resource": {
                    "Fn::Join": [
                        "",
                        [
                            "arn:",
                            {"Ref": "AWS::Partition"},
                            ":s3:::",
                            {"Ref": ASSETS_BUCKET_PARAMETER},
                            "/",
                            {"Ref": ASSETS_PREFIX_PARAMETER},
                            "*",
                        ],
                    ]
                },
            }
            changed = True
        if changed:
            # The L1 property itself (not an override), so cdk-nag checks what is deployed.
            node.policy_document = document


def _is_assets_bucket(resource: object) -> bool:
    """The assets bucket or all its objects; not an exact asset key (those stay as they are)."""
    text = json.dumps(resource)
    return ASSETS_BUCKET_PARAMETER in text and ASSETS_PREFIX_PARAMETER not in text
