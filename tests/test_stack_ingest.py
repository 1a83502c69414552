"""Ingest construct: runtime, environment, sizing, logs and least-privilege grants."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk import aws_lambda as lambda_

from stacks.ingest import CLOUDTRAIL_OUTPUT_KEY, GUARDDUTY_OUTPUT_KEY, function_code
from tests.stack_support import (
    as_list,
    dumps,
    logical_id,
    newest_python_runtime_name,
    resources,
    statements_of_role,
    workshop,
)

CASES = {
    "cloudtrail": ("cloudtrail/", CLOUDTRAIL_OUTPUT_KEY, "guardduty/"),
    "guardduty": ("guardduty/", GUARDDUTY_OUTPUT_KEY, "cloudtrail/"),
}


@pytest.fixture(scope="module")
def synthesized():
    return workshop()


def _function(synthesized, which: str):
    stack, template = synthesized
    fn = stack.ingest.cloudtrail_fn if which == "cloudtrail" else stack.ingest.guardduty_fn
    fn_id = logical_id(stack, fn)
    return stack, template, fn, resources(template, "AWS::Lambda::Function")[fn_id]


@pytest.mark.parametrize("which", CASES)
def test_function_runs_on_the_newest_python_runtime_in_the_enum(synthesized, which):
    *_, resource = _function(synthesized, which)
    assert resource["Properties"]["Runtime"] == newest_python_runtime_name()
    assert resource["Properties"]["Handler"] == "index.handler"


@pytest.mark.parametrize("which", CASES)
def test_function_environment_names_its_input_and_output(synthesized, which):
    stack, _, _, resource = _function(synthesized, which)
    prefix, output_key, _ = CASES[which]
    env = resource["Properties"]["Environment"]["Variables"]
    assert env == {
        "INPUT_BUCKET": {"Ref": logical_id(stack, stack.data.data_bucket)},
        "INPUT_PREFIX": prefix,
        "OUTPUT_BUCKET": {"Ref": logical_id(stack, stack.data.tuples_bucket)},
        "OUTPUT_KEY": output_key,
        "IPV4_ONLY": "true",
    }


@pytest.mark.parametrize("which", CASES)
def test_function_is_sized_for_a_ten_million_record_dataset(synthesized, which):
    *_, resource = _function(synthesized, which)
    assert resource["Properties"]["MemorySize"] >= 3008
    assert resource["Properties"]["Timeout"] == 900


@pytest.mark.parametrize("which", CASES)
def test_function_logs_json_to_its_own_log_group_deleted_with_the_stack(synthesized, which):
    _, template, _, resource = _function(synthesized, which)
    logging_config = resource["Properties"]["LoggingConfig"]
    assert logging_config["LogFormat"] == "JSON"
    group = resources(template, "AWS::Logs::LogGroup")[logging_config["LogGroup"]["Ref"]]
    assert group["DeletionPolicy"] == "Delete"
    assert group["Properties"]["RetentionInDays"] == 7


def _s3_statements(template, resource):
    role_id = resource["Properties"]["Role"]["Fn::GetAtt"][0]
    return [
        s
        for s in statements_of_role(template, role_id)
        if any(a.startswith("s3:") for a in as_list(s["Action"]))
    ]


@pytest.mark.parametrize("which", CASES)
def test_function_may_write_only_its_output_key(synthesized, which):
    stack, template, _, resource = _function(synthesized, which)
    _, output_key, _ = CASES[which]
    tuples_id = logical_id(stack, stack.data.tuples_bucket)
    writes = [
        s
        for s in _s3_statements(template, resource)
        if any(a.startswith(("s3:Put", "s3:Delete")) for a in as_list(s["Action"]))
    ]
    assert writes, "the function must be able to write its output"
    for statement in writes:
        assert not any(a.startswith("s3:Delete") for a in as_list(statement["Action"]))
        assert as_list(statement["Resource"]) == [
            {"Fn::Join": ["", [{"Fn::GetAtt": [tuples_id, "Arn"]}, f"/{output_key}"]]}
        ]


@pytest.mark.parametrize("which", CASES)
def test_function_may_read_only_its_input_prefix(synthesized, which):
    stack, template, _, resource = _function(synthesized, which)
    prefix, _, other_prefix = CASES[which]
    data_id = logical_id(stack, stack.data.data_bucket)
    statements = _s3_statements(template, resource)
    reads = [s for s in statements if as_list(s["Action"]) == ["s3:GetObject"]]
    assert [s["Resource"] for s in reads] == [
        {"Fn::Join": ["", [{"Fn::GetAtt": [data_id, "Arn"]}, f"/{prefix}*"]]}
    ]
    (listing,) = [s for s in statements if "s3:ListBucket" in as_list(s["Action"])]
    assert as_list(listing["Action"]) == ["s3:ListBucket"]
    assert listing["Resource"] == {"Fn::GetAtt": [data_id, "Arn"]}
    assert listing["Condition"] == {"StringLike": {"s3:prefix": [f"{prefix}*"]}}
    assert other_prefix not in dumps(statements)


@pytest.mark.parametrize("which", CASES)
def test_function_s3_actions_are_exact_not_the_grant_helpers_groups(synthesized, which):
    """Bucket.grant_read writes s3:GetObject* / s3:List* / s3:GetBucket*; we write the actions."""
    _, template, _, resource = _function(synthesized, which)
    actions = {a for s in _s3_statements(template, resource) for a in as_list(s["Action"])}
    assert actions == {"s3:GetObject", "s3:ListBucket", "s3:PutObject", "s3:AbortMultipartUpload"}


def test_function_code_is_the_one_hook_for_exercise_or_solution_code():
    staged = {}
    for solutions in (False, True):
        code = function_code("cloudtrail_ingest", solutions=solutions)
        assert isinstance(code, lambda_.AssetCode)
        staged[solutions] = (Path(code.path) / "index.py").read_text()
    exercise_line = "# run.output.write(get_tuples(records"
    assert exercise_line in staged[False]
    assert exercise_line not in staged[True]
    assert "run.output.write(get_tuples(records" in staged[True]
