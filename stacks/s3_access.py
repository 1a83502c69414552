"""Least-privilege S3 statements, written out instead of aws-cdk-lib's Bucket.grant_* helpers.

The grant helpers write action groups (``s3:GetObject*``, ``s3:List*``, ``s3:Abort*``, ...) that
also allow reading versions, tags and ACLs; these functions allow the one action each use needs,
on the prefix or key it needs it for.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3


def read_prefix(bucket: s3.IBucket, prefix: str) -> list[iam.PolicyStatement]:
    """Read every object under ``prefix`` and list that prefix (and only that prefix)."""
    return [
        iam.PolicyStatement(
            actions=["s3:GetObject"], resources=[bucket.arn_for_objects(f"{prefix}*")]
        ),
        list_prefixes(bucket, prefix),
    ]


def list_prefixes(bucket: s3.IBucket, *prefixes: str) -> iam.PolicyStatement:
    """ListBucket limited by the request's ``s3:prefix`` (a listing outside them is refused)."""
    return iam.PolicyStatement(
        actions=["s3:ListBucket"],
        resources=[bucket.bucket_arn],
        conditions={"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in prefixes]}},
    )


def read_keys(bucket: s3.IBucket, *keys: str) -> iam.PolicyStatement:
    """GetObject on exact keys or key patterns."""
    return iam.PolicyStatement(
        actions=["s3:GetObject"], resources=[bucket.arn_for_objects(key) for key in keys]
    )


def write_keys(bucket: s3.IBucket, *keys: str) -> iam.PolicyStatement:
    """PutObject (multipart uploads included) on exact keys or key patterns.

    AbortMultipartUpload lets boto3's transfer manager clean up a large upload that failed
    part-way instead of leaving billed parts behind.
    """
    return iam.PolicyStatement(
        actions=["s3:PutObject", "s3:AbortMultipartUpload"],
        resources=[bucket.arn_for_objects(key) for key in keys],
    )
