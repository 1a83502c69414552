"""Detection construct (-c detection=true): rule, DLQ, retries, alarm, least privilege, checkov."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk.assertions import Match, Template

from stacks.app import DEFAULT_STACK_NAME, build_app
from stacks.detection import MODEL_KEY, event_pattern, stage_scoring_function
from tests.stack_support import logical_id, resources, statements_of_role, workshop

ROOT = Path(__file__).resolve().parents[1]
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    """The app with detection on (Template.from_stack runs cdk-nag: a finding fails it)."""
    out = tmp_path_factory.mktemp("cdk")
    app = build_app({"detection": "true", "detection_email": "soc@example.com"}, outdir=str(out))
    stack = app.node.find_child(DEFAULT_STACK_NAME)
    template = Template.from_stack(stack)
    app.synth()
    return stack, template, out / f"{DEFAULT_STACK_NAME}.template.json"


def test_detection_is_off_by_default():
    _, template = workshop()
    assert not resources(template, "AWS::Events::Rule")
    assert not resources(template, "AWS::SNS::Topic")


def test_rule_pattern_is_the_tested_json_document(synthesized):
    stack, template, _ = synthesized
    rule = resources(template, "AWS::Events::Rule")[logical_id(stack, stack.detection.rule)]
    assert rule["Properties"]["EventPattern"] == event_pattern()
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [logical_id(stack, stack.detection.function), "Arn"]}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 21600}
    dlq = logical_id(stack, stack.detection.dead_letters)
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq, "Arn"]}}


def test_function_has_a_dead_letter_queue_retries_and_an_error_alarm(synthesized):
    stack, template, _ = synthesized
    fn_id = logical_id(stack, stack.detection.function)
    dlq = logical_id(stack, stack.detection.dead_letters)
    fn = resources(template, "AWS::Lambda::Function")[fn_id]
    assert fn["Properties"]["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": [dlq, "Arn"]}}
    template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {"FunctionName": {"Ref": fn_id}, "MaximumRetryAttempts": 2},
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "Errors",
            "Namespace": "AWS/Lambda",
            "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": fn_id}}],
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
        },
    )
    queue = resources(template, "AWS::SQS::Queue")[dlq]
    assert queue["DeletionPolicy"] == "Delete"
    assert queue["Properties"]["SqsManagedSseEnabled"] is True


def test_function_environment_names_the_fixed_model_key_and_topic(synthesized):
    stack, template, _ = synthesized
    fn = resources(template, "AWS::Lambda::Function")[logical_id(stack, stack.detection.function)]
    assert fn["Properties"]["Environment"]["Variables"] == {
        "MODEL_BUCKET": {"Ref": logical_id(stack, stack.data.tuples_bucket)},
        "MODEL_KEY": MODEL_KEY,
        "TOPIC_ARN": {"Ref": logical_id(stack, stack.detection.topic)},
    }


def test_scoring_role_may_do_exactly_its_job(synthesized):
    stack, template, _ = synthesized
    role = logical_id(stack, stack.detection.function.role)
    by_action = {}
    for statement in statements_of_role(template, role):
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        for action in actions:
            by_action[action] = statement["Resource"]
    bucket = logical_id(stack, stack.data.tuples_bucket)
    assert set(by_action) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "s3:GetObject",
        "sns:Publish",
        "sqs:SendMessage",
        "securityhub:BatchImportFindings",
    }
    assert by_action["s3:GetObject"] == {
        "Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, f"/{MODEL_KEY}"]]
    }
    assert by_action["sns:Publish"] == {"Ref": logical_id(stack, stack.detection.topic)}
    product = json.dumps(by_action["securityhub:BatchImportFindings"])
    assert ":product/" in product and "/default" in product and "*" not in product


def test_topic_is_encrypted_tls_only_with_the_email_subscription(synthesized):
    stack, template, _ = synthesized
    topic = resources(template, "AWS::SNS::Topic")[logical_id(stack, stack.detection.topic)]
    assert "alias/aws/sns" in json.dumps(topic["Properties"]["KmsMasterKeyId"])
    template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "soc@example.com"}
    )
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_log_group_is_deleted_with_the_stack(synthesized):
    stack, template, _ = synthesized
    group = resources(template, "AWS::Logs::LogGroup")[
        logical_id(stack, stack.detection.function.log_group)
    ]
    assert group["DeletionPolicy"] == "Delete" and group["UpdateReplacePolicy"] == "Delete"


def test_outputs_name_the_model_uri_for_export_model(synthesized):
    _, template, _ = synthesized
    outputs = template.find_outputs("DetectionModelUri")
    assert MODEL_KEY in json.dumps(outputs)


@pytest.mark.parametrize("email", ["not-an-address", "a@b", "x y@example.com"])
def test_a_bad_email_is_refused(email):
    with pytest.raises(ValueError, match="detection_email"):
        build_app({"detection": "true", "detection_email": email})


def test_checkov_finds_nothing_unexplained_in_the_detection_resources(synthesized):
    stack, _, template_file = synthesized
    run = subprocess.run(
        [str(CHECKOV), "-f", str(template_file), "--framework", "cloudformation", "-o", "json"]
        + ["--skip-download"],
        # Outside the repository, so that its .checkov.yaml (global skips, quiet output) does not
        # hide the construct's own suppressions from the count below.
        cwd=template_file.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(run.stdout)
    ours = [
        f"{c['check_id']} {c['resource']}"
        for c in report["results"]["failed_checks"]
        if ".Detection" in c["resource"]
    ]
    assert ours == []
    assert report["summary"]["skipped"] >= 5  # the suppressions, each with its reason


def test_deployed_layout_imports_the_ingest_tuples_function_in_a_bare_interpreter(tmp_path):
    """As Lambda runs it: the staged folder alone on sys.path (no lambda_src package)."""
    staged = stage_scoring_function(out_dir=tmp_path)
    code = (
        "import sys; sys.path.insert(0, '.'); import index, guardduty_ingest; "
        "assert index.tuples_from_finding is guardduty_ingest.tuples_from_finding; print('ok')"
    )
    run = subprocess.run(
        [sys.executable, "-I", "-c", code], cwd=staged, capture_output=True, text=True
    )
    assert run.stdout.strip() == "ok", run.stderr
    assert not (staged / "__init__.py").exists()
    assert sorted(p.name for p in staged.glob("*.py")) == [
        "alerts.py",
        "compact_model.py",
        "guardduty_findings.py",
        "guardduty_ingest.py",
        "index.py",
        "ingest_common.py",
    ]


def test_destroy_leaves_nothing_of_the_construct(synthesized):
    """No resource of the construct is retained; its model object lives in the tuples bucket,
    which the Cleanup construct empties before CloudFormation deletes it."""
    stack, template, _ = synthesized
    ours = {k: v for k, v in template.to_json()["Resources"].items() if k.startswith("Detection")}
    assert len(ours) >= 10
    kept = {k: v.get("DeletionPolicy") for k, v in ours.items()}
    assert not {
        k: p for k, p in kept.items() if p in ("Retain", "RetainExceptOnCreate", "Snapshot")
    }
    cleanup = resources(template, "Custom::WorkshopCleanup")
    (props,) = [r["Properties"] for r in cleanup.values()]
    assert {"Ref": logical_id(stack, stack.data.tuples_bucket)} in props["Buckets"]


def test_cfn_lint_passes_on_the_template_with_detection(synthesized):
    _, _, template_file = synthesized
    run = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "cfn-lint"), str(template_file)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_offline_twin_uses_the_stack_model_key_and_pattern_file():
    from secml import detect
    from stacks import detection

    assert detect.MODEL_KEY == detection.MODEL_KEY
    assert detect.EVENT_PATTERN_FILE == detection.EVENT_PATTERN_FILE
