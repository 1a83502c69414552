"""`cdk destroy` leaves nothing behind: what the template guarantees (issue 7)."""

from __future__ import annotations

import pytest

from tests.stack_support import as_list, logical_id, resources, statements_of_role, workshop


@pytest.fixture(scope="module")
def synthesized():
    return workshop()


@pytest.fixture(scope="module")
def cleanup(synthesized):
    _, template = synthesized
    ((cleanup_id, cleanup_resource),) = resources(template, "Custom::WorkshopCleanup").items()
    return cleanup_id, cleanup_resource


def test_no_resource_is_retained_or_snapshotted_on_delete(synthesized):
    _, template = synthesized
    for name, resource in template.to_json()["Resources"].items():
        for key in ("DeletionPolicy", "UpdateReplacePolicy"):
            assert resource.get(key, "Delete") not in (
                "Retain",
                "RetainExceptOnCreate",
                "Snapshot",
            ), name


def test_every_function_logs_to_a_log_group_the_stack_deletes(synthesized):
    _, template = synthesized
    groups = resources(template, "AWS::Logs::LogGroup")
    functions = resources(template, "AWS::Lambda::Function")
    assert len(functions) >= 7  # ours, both providers' frameworks, the dataset deployment
    for name, fn in functions.items():
        group_ref = fn["Properties"].get("LoggingConfig", {}).get("LogGroup")
        assert group_ref and "Ref" in group_ref, f"{name} would log to /aws/lambda/... on its own"
        group = groups[group_ref["Ref"]]
        assert group["DeletionPolicy"] == "Delete", name


def test_no_lambda_outside_the_template_is_created_by_cdk_internals(synthesized):
    _, template = synthesized
    raw = template.to_json()["Resources"]
    assert not [k for k, v in raw.items() if v["Type"] == "Custom::S3AutoDeleteObjects"]


def test_cleanup_is_deleted_before_the_buckets_and_role_it_needs(synthesized, cleanup):
    stack, _ = synthesized
    _, resource = cleanup
    needed = {
        logical_id(stack, stack.data.data_bucket),
        logical_id(stack, stack.data.tuples_bucket),
        logical_id(stack, stack.notebook.role),
    }
    assert needed <= set(resource["DependsOn"])
    assert resource["Properties"]["NotebookRoleArn"] == {
        "Fn::GetAtt": [logical_id(stack, stack.notebook.role), "Arn"]
    }
    assert resource["Properties"]["StackName"] == stack.stack_name
    assert resource["Properties"]["TagKey"] == "secml:stack"


def test_notebook_instance_is_deleted_before_the_cleanup_runs(synthesized, cleanup):
    _, template = synthesized
    cleanup_id, _ = cleanup
    (instance,) = resources(template, "AWS::SageMaker::NotebookInstance").values()
    assert cleanup_id in instance["DependsOn"]


def test_cleanup_may_delete_endpoints_only_when_they_carry_the_stack_tag(synthesized):
    stack, template = synthesized
    role_id = logical_id(stack, stack.cleanup.handler.role)
    statements = statements_of_role(template, role_id)
    deletes = [s for s in statements if "sagemaker:DeleteEndpoint" in as_list(s["Action"])]
    assert len(deletes) == 1
    assert deletes[0]["Condition"] == {
        "StringEquals": {"aws:ResourceTag/secml:stack": stack.stack_name}
    }
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert not {a for a in actions if a.startswith("s3:") and "Put" in a}
