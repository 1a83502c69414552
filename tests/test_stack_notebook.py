"""Notebook construct: role, notebook instance, lifecycle configuration."""

from __future__ import annotations

import base64

import pytest

from stacks.notebook import (
    LIFECYCLE_SCRIPT_LIMIT,
    on_start_values,
    render_lifecycle_script,
    sdk_requirements,
)
from tests.stack_support import as_list, dumps, logical_id, resources, statements_of_role, workshop


@pytest.fixture(scope="module")
def synthesized():
    return workshop()


@pytest.fixture(scope="module")
def role_statements(synthesized):
    stack, template = synthesized
    return statements_of_role(template, logical_id(stack, stack.notebook.role))


def test_instance_is_a_small_one_by_default_with_the_lifecycle_config(synthesized):
    stack, template = synthesized
    (instance,) = resources(template, "AWS::SageMaker::NotebookInstance").values()
    props = instance["Properties"]
    assert props["InstanceType"] == "ml.t3.medium"
    assert props["RoleArn"] == {"Fn::GetAtt": [logical_id(stack, stack.notebook.role), "Arn"]}
    assert props["LifecycleConfigName"] == {
        "Fn::GetAtt": [
            stack.resolve(stack.notebook.lifecycle.logical_id),
            "NotebookInstanceLifecycleConfigName",
        ]
    }
    assert props["RootAccess"] == "Disabled"


def test_role_may_pass_only_itself_and_only_to_sagemaker(role_statements, synthesized):
    stack, _ = synthesized
    passes = [s for s in role_statements if "iam:PassRole" in as_list(s["Action"])]
    assert len(passes) == 1
    assert passes[0]["Resource"] == {"Fn::GetAtt": [logical_id(stack, stack.notebook.role), "Arn"]}
    assert passes[0]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }


def test_role_can_train_deploy_invoke_and_delete_ip_insights(role_statements):
    actions = {a for s in role_statements for a in as_list(s["Action"])}
    needed = {
        "sagemaker:CreateTrainingJob",
        "sagemaker:DescribeTrainingJob",
        "sagemaker:CreateModel",
        "sagemaker:CreateEndpointConfig",
        "sagemaker:CreateEndpoint",
        "sagemaker:DescribeEndpoint",
        "sagemaker:InvokeEndpoint",
        "sagemaker:DeleteEndpoint",
        "sagemaker:DeleteEndpointConfig",
        "sagemaker:DeleteModel",
        "sagemaker:AddTags",
        "sagemaker:StopNotebookInstance",
    }
    assert needed <= actions
    assert not any(a.startswith("sagemaker:") and "*" in a for a in actions)


def test_role_reads_the_data_bucket_and_reads_and_writes_the_tuples_bucket(
    role_statements, synthesized
):
    stack, _ = synthesized
    data = logical_id(stack, stack.data.data_bucket)
    tuples = logical_id(stack, stack.data.tuples_bucket)
    writes_to = dumps(
        [
            s["Resource"]
            for s in role_statements
            if any(a.startswith(("s3:Put", "s3:DeleteObject")) for a in as_list(s["Action"]))
        ]
    )
    assert tuples in writes_to
    assert data not in writes_to
    reads_from = dumps(
        [s["Resource"] for s in role_statements if "s3:GetObject*" in as_list(s["Action"])]
    )
    assert data in reads_from and tuples in reads_from


def test_lifecycle_scripts_carry_the_stack_values(synthesized):
    _, template = synthesized
    (config,) = resources(template, "AWS::SageMaker::NotebookInstanceLifecycleConfig").values()
    on_create = dumps(config["Properties"]["OnCreate"])
    on_start = dumps(config["Properties"]["OnStart"])
    assert "Fn::Base64" in on_create and "Fn::Base64" in on_start
    assert "workshop_config.json" in on_create
    assert "ip_insights_workshop.ipynb" in on_create
    assert "workshop_helpers.py" in on_create
    assert "IDLE_MINUTES='60'" in on_start
    assert "def is_idle" in on_start  # the auto-stop script is embedded, not downloaded


def test_lifecycle_scripts_stay_under_sagemakers_size_limit():
    long = "x" * 63
    on_create = render_lifecycle_script(
        "on_create.sh",
        {
            "NOTEBOOK_BUCKET": long,
            "NOTEBOOK_KEY": long + ".ipynb",
            "NOTEBOOK_FILE": "ip_insights_workshop.ipynb",
            "HELPERS_BUCKET": long,
            "HELPERS_KEY": long + ".py",
            "HELPERS_FILE": "workshop_helpers.py",
            "SDK_REQUIREMENTS": sdk_requirements(),
            "REGION": "ap-southeast-4",
            "STACK_NAME": long * 2,
            "DATA_BUCKET": long,
            "TUPLES_BUCKET": long,
            "TRAIN_KEY": "train/cloudtrail_tuples.csv",
            "INFER_KEY": "infer/guardduty_tuples.csv",
            "TRUTH_KEY": "truth.csv",
        },
    )
    on_start = render_lifecycle_script(
        "on_start.sh", on_start_values(idle_minutes=600, region="ap-southeast-4")
    )
    for script in (on_create, on_start):
        assert len(base64.b64encode(script.encode())) < LIFECYCLE_SCRIPT_LIMIT


def test_rendering_refuses_a_missing_or_unknown_marker():
    with pytest.raises(ValueError, match="no @@NOPE@@"):
        render_lifecycle_script(
            "on_start.sh", {**on_start_values(idle_minutes=1, region="r"), "NOPE": "x"}
        )
    with pytest.raises(ValueError, match="unreplaced"):
        render_lifecycle_script("on_start.sh", {"IDLE_MINUTES": "1"})
