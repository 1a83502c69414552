"""The whole WorkshopStack: removal policies, IAM wildcards, tags, outputs, context, cdk-nag."""

from __future__ import annotations

import pytest
from aws_cdk import aws_s3 as s3

from stacks.app import DEFAULT_STACK_NAME, build_app
from stacks.workshop_stack import STACK_TAG
from tests.stack_support import as_list, resources, workshop

TAGGABLE = (
    "AWS::S3::Bucket",
    "AWS::Lambda::Function",
    "AWS::IAM::Role",
    "AWS::Logs::LogGroup",
    "AWS::SageMaker::NotebookInstance",
)


@pytest.fixture(scope="module")
def synthesized():
    return workshop()


def test_no_iam_statement_allows_every_action_of_a_service(synthesized):
    _, template = synthesized
    documents = [
        p["Properties"]["PolicyDocument"] for p in resources(template, "AWS::IAM::Policy").values()
    ]
    for role in resources(template, "AWS::IAM::Role").values():
        documents += [p["PolicyDocument"] for p in role["Properties"].get("Policies", [])]
    assert documents
    for document in documents:
        for statement in document["Statement"]:
            for action in as_list(statement.get("Action", [])):
                assert action != "*" and not action.endswith(":*"), statement
            assert "NotAction" not in statement


def test_every_taggable_resource_carries_the_stack_tag(synthesized):
    stack, template = synthesized
    for resource_type in TAGGABLE:
        found = resources(template, resource_type)
        assert found, resource_type
        for name, resource in found.items():
            tags = resource["Properties"].get("Tags", [])
            assert {"Key": STACK_TAG, "Value": stack.stack_name} in tags, name


def test_outputs_name_what_attendees_open(synthesized):
    _, template = synthesized
    outputs = template.to_json()["Outputs"]
    assert {
        "NotebookInstanceName",
        "NotebookConsoleUrl",
        "DataBucketName",
        "TuplesBucketName",
        "CloudTrailIngestFunctionName",
        "GuardDutyIngestFunctionName",
    } <= set(outputs)


def test_no_hard_coded_physical_names(synthesized):
    _, template = synthesized
    name_keys = ("BucketName", "FunctionName", "RoleName", "LogGroupName", "NotebookInstanceName")
    for name, resource in template.to_json()["Resources"].items():
        if resource["Type"].startswith("Custom::"):
            continue
        for key in name_keys:
            assert key not in resource.get("Properties", {}), f"{name} sets {key}"


def test_context_sets_stack_name_and_construct_properties():
    app = build_app(
        {
            "stack_name": "Other",
            "solutions": "true",
            "notebook_instance_type": "ml.m5.large",
            "notebook_idle_minutes": "15",
        }
    )
    stack = app.node.find_child("Other")
    assert stack.ingest.solutions is True
    assert stack.notebook.instance.instance_type == "ml.m5.large"
    assert stack.notebook.idle_minutes == 15


@pytest.mark.parametrize(
    "context", [{"solutions": "maybe"}, {"notebook_idle_minutes": "0"}, {"sample_findings": "x"}]
)
def test_bad_context_values_are_refused(context):
    with pytest.raises(ValueError, match="context"):
        build_app(context)


def test_an_unacknowledged_cdk_nag_finding_fails_synthesis(tmp_path):
    app = build_app({"notebook_idle_minutes": "5"})
    stack = app.node.find_child(DEFAULT_STACK_NAME)
    s3.Bucket(stack, "NotAcknowledged")  # no TLS-only policy, no access logs
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()


def acknowledgments(stack) -> list[tuple[str, str]]:
    """(construct path, finding id) of every cdk-nag acknowledgment in the stack."""
    found = []
    for construct in stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == "aws:cdk:acknowledged-rules":
                for key in entry.data:
                    found.append((construct.node.path, key.removeprefix("Annotation::")))
    return found


def test_only_aws_cdk_lib_written_policies_acknowledge_s3_action_groups(synthesized):
    """Our own roles state exact S3 actions; the groups (s3:GetObject*, s3:List*, ...) come
    only from BucketDeployment, whose policy aws-cdk-lib writes."""
    stack, _ = synthesized
    acks = acknowledgments(stack)
    assert acks
    for path, finding in acks:
        if "[Action::s3:" in finding:
            assert path.endswith("/Data/DatasetDeploymentRole"), (path, finding)
        assert ":ecr:" not in finding, (path, finding)  # the image's account is mapped exactly


def test_an_app_built_in_process_has_cdk_jsons_feature_flags():
    """Tests, the demo and `fleet package` build the app in-process: they must synthesize what
    `cdk synth` deploys, which reads cdk.json's context (a flag changes grants: the imported
    aws/sns alias grant, for one). Context given by the caller still wins."""
    import json
    from pathlib import Path

    flags = json.loads((Path(__file__).resolve().parents[1] / "cdk.json").read_text())["context"]
    app = build_app({"stack_name": "Other"})
    for name, value in flags.items():
        assert app.node.try_get_context(name) == value, name
    assert app.node.try_get_context("stack_name") == "Other"
