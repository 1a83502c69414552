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

import aws_cdk as cdk

ASSETS_BUCKET_PARAMETER = "AssetsBucketName"
ASSETS_PREFIX_PARAMETER = "AssetsBucketPrefix"


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
            allowed_pattern="^$|^.*/$",
            constraint_description="empty, or a key prefix that ends with a slash",
            description="Key prefix of the assets in AssetsBucketName, ending with '/'.",
        )
        # CDK's asset readers (the BucketDeployment handler) get s3:GetObject* on the assets
        # bucket's objects; with this synthesizer that bucket is the parameter.
        cdk.Validations.of(stack).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::<AssetsBucketName>/*]",
                reason="Asset readers need the template's own assets, which are objects under "
                "AssetsBucketPrefix in the central assets bucket (same grant as the CDK "
                "bootstrap bucket in a normal deploy).",
            )
        )
