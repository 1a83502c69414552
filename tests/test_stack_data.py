"""Data construct: the two buckets and the dataset deployment."""

from __future__ import annotations

from pathlib import Path

import pytest

from stacks.data import DATASET_DIR
from tests.stack_support import logical_id, resources, workshop


@pytest.fixture(scope="module")
def synthesized():
    return workshop()


@pytest.fixture(scope="module")
def bucket_ids(synthesized):
    stack, _ = synthesized
    data = stack.data
    return [logical_id(stack, data.data_bucket), logical_id(stack, data.tuples_bucket)]


def test_both_buckets_are_encrypted_private_unversioned_and_deleted(synthesized, bucket_ids):
    _, template = synthesized
    buckets = resources(template, "AWS::S3::Bucket")
    assert set(bucket_ids) <= set(buckets)
    for bucket_id in bucket_ids:
        bucket = buckets[bucket_id]
        props = bucket["Properties"]
        rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props.get("VersioningConfiguration", {}).get("Status") != "Enabled"
        assert bucket["DeletionPolicy"] == "Delete"
        assert bucket["UpdateReplacePolicy"] == "Delete"


def test_both_buckets_refuse_requests_without_tls(synthesized, bucket_ids):
    _, template = synthesized
    denied = set()
    for policy in resources(template, "AWS::S3::BucketPolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            condition = statement.get("Condition", {}).get("Bool", {})
            if statement["Effect"] == "Deny" and condition.get("aws:SecureTransport") == "false":
                denied.add(policy["Properties"]["Bucket"]["Ref"])
    assert denied == set(bucket_ids)


def test_both_buckets_are_emptied_by_the_cleanup_before_deletion(synthesized, bucket_ids):
    _, template = synthesized
    (cleanup,) = resources(template, "Custom::WorkshopCleanup").values()
    assert cleanup["Properties"]["Buckets"] == [{"Ref": bucket_id} for bucket_id in bucket_ids]
    assert set(bucket_ids) <= set(cleanup["DependsOn"])


def test_dataset_is_deployed_to_the_data_bucket_root(synthesized, bucket_ids):
    _, template = synthesized
    (deployment,) = resources(template, "Custom::CDKBucketDeployment").values()
    props = deployment["Properties"]
    assert props["DestinationBucketName"] == {"Ref": bucket_ids[0]}
    assert "DestinationBucketKeyPrefix" not in props


def test_dataset_folder_has_the_layout_the_ingest_functions_read():
    root = Path(DATASET_DIR)
    assert list(root.glob("cloudtrail/AWSLogs/*/CloudTrail/*/*/*/*/*.json.gz"))
    assert list(root.glob("guardduty/*.json"))
    assert (root / "truth.csv").is_file()
