"""Notebook construct: role, notebook instance, lifecycle configuration."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from stacks.notebook import (
    LIFECYCLE_SCRIPT_LIMIT,
    ipinsights_registries,
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


def _s3(role_statements) -> list[dict]:
    return [s for s in role_statements if any(a.startswith("s3:") for a in as_list(s["Action"]))]


def _joined(bucket_id: str, key: str) -> dict:
    return {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, f"/{key}"]]}


def test_role_reads_the_data_it_needs_and_writes_only_under_ipinsights(
    role_statements, synthesized
):
    stack, _ = synthesized
    data = logical_id(stack, stack.data.data_bucket)
    tuples = logical_id(stack, stack.data.tuples_bucket)
    statements = _s3(role_statements)
    writes = [s for s in statements if "s3:PutObject" in as_list(s["Action"])]
    assert [as_list(s["Resource"]) for s in writes] == [[_joined(tuples, "ipinsights/*")]]
    assert not any(a.startswith("s3:Delete") for s in statements for a in as_list(s["Action"]))
    reads = [r for s in statements if s["Action"] == "s3:GetObject" for r in as_list(s["Resource"])]
    for needed in [
        _joined(data, "truth.csv"),
        _joined(data, "guardduty/*"),
        _joined(tuples, "train/cloudtrail_tuples.csv"),
        _joined(tuples, "infer/guardduty_tuples.csv"),
        _joined(tuples, "ipinsights/*"),
    ]:
        assert needed in reads
    assert _joined(data, "*") not in reads and _joined(tuples, "*") not in reads
    (data_listing,) = [
        s for s in statements if s["Action"] == "s3:ListBucket" and data in dumps(s["Resource"])
    ]
    assert data_listing["Condition"] == {"StringLike": {"s3:prefix": ["guardduty/*"]}}


def test_role_s3_actions_are_exact_not_the_grant_helpers_groups(role_statements):
    actions = {a for s in _s3(role_statements) for a in as_list(s["Action"])}
    assert actions == {"s3:GetObject", "s3:ListBucket", "s3:PutObject", "s3:AbortMultipartUpload"}


def _sagemaker(role_statements) -> list[dict]:
    return [
        s
        for s in role_statements
        if any(a.startswith("sagemaker:") for a in as_list(s["Action"]))
        and "NotebookInstance" not in dumps(s["Action"])
    ]


def test_role_touches_only_secml_named_sagemaker_resources(role_statements):
    statements = _sagemaker(role_statements)
    assert statements
    for statement in statements:
        for resource in as_list(statement["Resource"]):
            assert dumps(resource).endswith('/secml-*"]]}'), statement


def test_creates_need_the_stack_tag_and_writes_need_it_on_the_resource(role_statements):
    requested = {"aws:RequestTag/secml:stack": "SecmlWorkshop"}
    present = {"aws:ResourceTag/secml:stack": "SecmlWorkshop"}
    for statement in _sagemaker(role_statements):
        actions = as_list(statement["Action"])
        if any(a.split(":")[1].startswith(("Create", "AddTags")) for a in actions):
            assert statement["Condition"]["StringEquals"] == requested, statement
        elif any(
            a.split(":")[1].startswith(("Delete", "Stop", "Update", "Invoke")) for a in actions
        ):
            assert statement["Condition"]["StringEquals"] == present, statement
        else:  # reads by name only: a deleted resource must read as "not found"
            assert all(a.split(":")[1].startswith(("Describe", "List")) for a in actions)
            assert "Condition" not in statement


def test_training_and_hosting_are_limited_to_a_few_instance_types(role_statements):
    conditioned = {
        action: s["Condition"]
        for s in _sagemaker(role_statements)
        for action in as_list(s["Action"])
        if action in ("sagemaker:CreateTrainingJob", "sagemaker:CreateEndpointConfig")
    }
    assert set(conditioned) == {"sagemaker:CreateTrainingJob", "sagemaker:CreateEndpointConfig"}
    for condition in conditioned.values():
        types = condition["ForAllValues:StringEquals"]["sagemaker:InstanceTypes"]
        assert "ml.m5.large" in types and not any("*" in t for t in types)
        assert not any(t.startswith(("ml.p", "ml.g")) for t in types)  # no GPU bills
        assert condition["Null"] == {"sagemaker:InstanceTypes": "false"}


def test_role_pulls_only_the_ip_insights_image_of_its_region(role_statements, synthesized):
    _, template = synthesized
    (pull,) = [s for s in role_statements if "ecr:BatchGetImage" in as_list(s["Action"])]
    resource = dumps(pull["Resource"])
    assert resource.endswith(':repository/ipinsights"]]}')
    assert '"*"' not in resource and ":*:" not in resource
    (mapping,) = [m for m in template.to_json()["Mappings"].values() if "us-east-1" in m]
    assert mapping["us-east-1"] == {"account": "382416733822"}  # the SDK's image_uris table
    assert mapping["eu-west-1"] == {"account": "438346466558"}


def test_role_has_no_iam_action_but_passing_itself(role_statements):
    """iam:SimulatePrincipalPolicy would make the SageMaker SDK v3 reject this role (its
    validation simulates VPC actions on "*"); iam:GetRole is not needed either."""
    iam_actions = {a for s in role_statements for a in as_list(s["Action"]) if a.startswith("iam:")}
    assert iam_actions == {"iam:PassRole"}


def test_role_logs_only_to_its_training_streams_and_endpoint_groups(role_statements):
    logs = [s for s in role_statements if any(a.startswith("logs:") for a in as_list(s["Action"]))]
    resources = dumps([s["Resource"] for s in logs])
    assert "/aws/sagemaker/*" not in resources
    assert "log-group:/aws/sagemaker/TrainingJobs:log-stream:secml-*" in resources
    assert "log-group:/aws/sagemaker/Endpoints/secml-*" in resources
    assert not any("logs:Delete" in a for s in logs for a in as_list(s["Action"]))


def test_instance_allows_imdsv2_only(synthesized):
    _, template = synthesized
    (instance,) = resources(template, "AWS::SageMaker::NotebookInstance").values()
    assert instance["Properties"]["InstanceMetadataServiceConfiguration"] == {
        "MinimumInstanceMetadataServiceVersion": "2"
    }


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


def test_notebook_pulls_the_image_the_role_may_pull():
    """The role's ECR mapping comes from the SDK's table; the notebook's image must agree."""
    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    source = "".join(
        (notebooks / name).read_text()
        for name in ("ip_insights_workshop.py", "workshop_helpers.py")
    )
    in_notebook = dict(re.findall(r'"([a-z]{2}(?:-gov)?-[a-z]+-\d)": "(\d{12})"', source))
    if not in_notebook:  # no table of its own: it asks the SDK (image_uris.retrieve)
        assert "image_uris" in source
    registries = ipinsights_registries()
    assert in_notebook.items() <= registries.items()
