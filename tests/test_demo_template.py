"""The demo reads its buckets and the Lambdas' environment from the synthesized template."""

from __future__ import annotations

import re

import pytest

from secml.demo.template import local_bucket_name, plan_from_template
from secml.errors import SecmlError
from tests.stack_support import DEFAULT_STACK_NAME, workshop


@pytest.fixture(scope="module")
def plan():
    _, template = workshop()
    return plan_from_template(DEFAULT_STACK_NAME, template.to_json())


def test_plan_takes_the_ingest_environment_from_the_template(plan):
    ct = plan.functions["CloudTrailIngest"].environment
    gd = plan.functions["GuardDutyIngest"].environment
    assert (ct["INPUT_PREFIX"], ct["OUTPUT_KEY"]) == ("cloudtrail/", "train/cloudtrail_tuples.csv")
    assert (gd["INPUT_PREFIX"], gd["OUTPUT_KEY"]) == ("guardduty/", "infer/guardduty_tuples.csv")
    assert ct["INPUT_BUCKET"] == gd["INPUT_BUCKET"] != ct["OUTPUT_BUCKET"] == gd["OUTPUT_BUCKET"]
    assert {ct["INPUT_BUCKET"], ct["OUTPUT_BUCKET"]} <= set(plan.buckets.values())


def test_dataset_goes_where_the_bucket_deployment_puts_it(plan):
    assert plan.dataset_bucket == plan.functions["CloudTrailIngest"].environment["INPUT_BUCKET"]
    assert plan.dataset_prefix == ""


def test_resource_counts_cover_the_whole_template(plan):
    _, template = workshop()
    assert sum(plan.resource_counts.values()) == len(template.to_json()["Resources"])
    assert plan.resource_counts["AWS::S3::Bucket"] >= 2


def test_local_bucket_names_are_valid_s3_names():
    name = local_bucket_name("My_Stack", "DataDataBucketA7E8509A" * 4)
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", name)


def test_an_environment_value_the_demo_cannot_resolve_is_a_clear_error():
    template = {
        "Resources": {
            "IngestCloudTrailIngestX": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Environment": {"Variables": {"INPUT_BUCKET": {"Fn::ImportValue": "Other"}}}
                },
            }
        }
    }
    with pytest.raises(SecmlError, match="IngestCloudTrailIngestX.INPUT_BUCKET: cannot resolve"):
        plan_from_template("S", template)
