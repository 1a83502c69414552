"""Athena construct (-c athena=true): workgroup limits, the deployed query text, least privilege."""

from __future__ import annotations

import pytest
import sqlglot
from aws_cdk.assertions import Template

from secml.sql.query import source_text, tuple_query
from stacks.app import DEFAULT_STACK_NAME, build_app
from stacks.athena import DEFAULT_SCAN_LIMIT_GB, dataset_source
from stacks.ingest import CLOUDTRAIL_OUTPUT_KEY
from tests.stack_support import dumps, logical_id, resources, statements_of_role, workshop


def _synth(context: dict):
    app = build_app(context)
    stack = app.node.find_child(DEFAULT_STACK_NAME)
    return stack, Template.from_stack(stack)  # runs cdk-nag: a finding fails the synth


@pytest.fixture(scope="module")
def synthesized():
    return _synth({"athena": "true"})


def _one(template: Template, resource_type: str) -> dict:
    (found,) = resources(template, resource_type).values()
    return found["Properties"]


def test_off_by_default():
    _, template = workshop()
    for kind in ("AWS::Athena::WorkGroup", "AWS::Glue::Table", "AWS::Athena::NamedQuery"):
        assert not resources(template, kind)


def test_workgroup_enforces_its_limit_encryption_and_result_location(synthesized):
    stack, template = synthesized
    workgroup = _one(template, "AWS::Athena::WorkGroup")
    config = workgroup["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["BytesScannedCutoffPerQuery"] == DEFAULT_SCAN_LIMIT_GB * 1024**3
    assert config["EngineVersion"]["SelectedEngineVersion"] == "Athena engine version 3"
    result = config["ResultConfiguration"]
    assert result["EncryptionConfiguration"] == {"EncryptionOption": "SSE_S3"}
    results_bucket = logical_id(stack, stack.athena.results_bucket)
    assert {"Ref": results_bucket} in result["OutputLocation"]["Fn::Join"][1]
    assert workgroup["RecursiveDeleteOption"] is True  # destroy takes its saved query along


def test_scan_limit_comes_from_context():
    _, template = _synth({"athena": "true", "athena_scan_limit_gb": "7"})
    config = _one(template, "AWS::Athena::WorkGroup")["WorkGroupConfiguration"]
    assert config["BytesScannedCutoffPerQuery"] == 7 * 1024**3


def test_deployed_query_is_the_one_source_the_duckdb_engine_runs(synthesized):
    """The named query is the Athena text of secml/sql/cloudtrail_tuples.sql, and translating
    that deployed text to DuckDB gives exactly the query the DuckDB engine (and its tests) ran."""
    _, template = synthesized
    deployed = _one(template, "AWS::Athena::NamedQuery")["QueryString"]
    assert deployed == tuple_query("athena")
    assert sqlglot.transpile(deployed, read="trino", write="duckdb", pretty=True, comments=False)[
        0
    ] == tuple_query("duckdb")
    # and it is that file, not a copy: the same statement, parsed
    assert sqlglot.parse_one(source_text(), read="trino") == sqlglot.parse_one(
        deployed, read="trino"
    )


def test_table_projects_the_datasets_partitions_over_the_data_bucket(synthesized):
    stack, template = synthesized
    table = _one(template, "AWS::Glue::Table")["TableInput"]
    params = table["Parameters"]
    source = dataset_source()
    assert source.accounts == ("489455728439",)
    assert params["projection.enabled"] == "true"
    assert params["projection.account.values"] == ",".join(source.accounts)
    assert params["projection.region.values"] == ",".join(source.regions)
    assert params["projection.day.range"] == f"{source.first_day},NOW"
    template_parts = params["storage.location.template"]["Fn::Join"][1]
    assert {"Ref": logical_id(stack, stack.data.data_bucket)} in template_parts
    assert template_parts[-1] == "/cloudtrail/AWSLogs/${account}/CloudTrail/${region}/${day}"
    assert [k["Name"] for k in table["PartitionKeys"]] == ["account", "region", "day"]
    serde = table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"]
    assert serde == "com.amazon.emr.hive.serde.CloudTrailSerde"


def test_organisation_trail_from_context():
    context = {
        "athena": "true",
        "athena_trail_bucket": "org-trail-bucket",
        "athena_trail_prefix": "AWSLogs/o-abc123def4",
        "athena_accounts": "111122223333,444455556666",
    }
    _, template = _synth(context)
    params = _one(template, "AWS::Glue::Table")["TableInput"]["Parameters"]
    assert params["storage.location.template"] == (
        "s3://org-trail-bucket/AWSLogs/o-abc123def4/${account}/CloudTrail/${region}/${day}"
    )
    assert params["projection.account.values"] == "111122223333,444455556666"
    assert "org-trail-bucket/AWSLogs/o-abc123def4/*" in dumps(template.to_json())
    with pytest.raises(ValueError, match="athena_accounts"):
        build_app({"athena": "true", "athena_trail_bucket": "org-trail-bucket"})


def test_runner_may_do_only_what_a_run_needs(synthesized):
    stack, template = synthesized
    fn = stack.athena.function
    statements = statements_of_role(template, logical_id(stack, fn.role))
    actions = {
        a
        for s in statements
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert not any(a.endswith("*") for a in actions)
    assert "s3:DeleteObject" in actions and "athena:StartQueryExecution" in actions
    text = dumps(statements)
    assert f"/{CLOUDTRAIL_OUTPUT_KEY}" in text  # the one output key, nothing else of that bucket
    listing = [s for s in statements if s["Action"] == "s3:ListBucket" and "Condition" in s]
    assert listing[0]["Condition"] == {"StringLike": {"s3:prefix": ["cloudtrail/AWSLogs/*"]}}
    athena = next(s for s in statements if "athena:StartQueryExecution" in s["Action"])
    assert athena["Resource"]["Fn::Join"][1][-1].endswith(":workgroup/secmlworkshop-tuples")
    env = resources(template, "AWS::Lambda::Function")[logical_id(stack, fn)]["Properties"]
    variables = env["Environment"]["Variables"]
    assert variables["NAMED_QUERY_ID"] == {
        "Fn::GetAtt": [logical_id(stack, stack.athena.named_query), "NamedQueryId"]
    }
    assert variables["OUTPUT_KEY"] == CLOUDTRAIL_OUTPUT_KEY
    assert env["ReservedConcurrentExecutions"] == 1


def test_destroy_empties_the_results_bucket(synthesized):
    stack, template = synthesized
    cleanup = next(iter(resources(template, "Custom::WorkshopCleanup").values()))
    buckets = cleanup["Properties"]["Buckets"]
    assert {"Ref": logical_id(stack, stack.athena.results_bucket)} in buckets
    bucket = resources(template, "AWS::S3::Bucket")[logical_id(stack, stack.athena.results_bucket)]
    assert bucket["DeletionPolicy"] == "Delete"
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rules[0]["ExpirationInDays"] == 7
