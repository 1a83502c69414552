"""GuardDuty construct: the detector custom resource, its handler and provider."""

from __future__ import annotations

import pytest

from tests.stack_support import (
    as_list,
    logical_id,
    newest_python_runtime_name,
    resources,
    statements_of_role,
    workshop,
)


@pytest.fixture(scope="module")
def synthesized():
    return workshop()


def test_detector_resource_asks_for_sample_findings_only_in_its_own_detector(synthesized):
    stack, template = synthesized
    (detector,) = resources(template, "Custom::GuardDutyDetector").values()
    # "true" = only into a detector the stack creates (lambda_src/guardduty_detector IF_CREATED).
    assert detector["Properties"]["SampleFindings"] == "true"
    assert detector["Properties"]["Tags"] == {"secml:stack": stack.stack_name}
    assert detector["DeletionPolicy"] == "Delete"


def test_cloudformation_gives_up_on_the_detector_handler_within_minutes(synthesized):
    _, template = synthesized
    (detector,) = resources(template, "Custom::GuardDutyDetector").values()
    assert 0 < int(detector["Properties"]["ServiceTimeout"]) <= 600


def test_handler_runs_the_detector_code_on_the_newest_runtime(synthesized):
    stack, template = synthesized
    handler = resources(template, "AWS::Lambda::Function")[
        logical_id(stack, stack.guardduty.handler)
    ]
    assert handler["Properties"]["Runtime"] == newest_python_runtime_name()
    assert handler["Properties"]["Handler"] == "index.on_event"


def test_handler_may_delete_detectors_but_not_touch_anything_else(synthesized):
    stack, template = synthesized
    handler = resources(template, "AWS::Lambda::Function")[
        logical_id(stack, stack.guardduty.handler)
    ]
    role_id = handler["Properties"]["Role"]["Fn::GetAtt"][0]
    actions = {a for s in statements_of_role(template, role_id) for a in as_list(s["Action"])}
    assert {"guardduty:ListDetectors", "guardduty:CreateDetector"} <= actions
    assert {"guardduty:CreateSampleFindings", "guardduty:DeleteDetector"} <= actions
    assert "guardduty:GetDetector" in actions  # status and tags, issue 12 items 2 and 3
    assert "guardduty:UpdateDetector" not in actions  # a suspended detector is never resumed
    services = {a.split(":")[0] for a in actions}
    assert services == {"guardduty", "iam", "logs"}
    assert "iam:PassRole" not in actions


def test_every_function_of_the_construct_logs_to_a_log_group_it_deletes(synthesized):
    stack, template = synthesized
    functions = resources(template, "AWS::Lambda::Function")
    groups = resources(template, "AWS::Logs::LogGroup")
    prefix = logical_id(stack, stack.guardduty.handler)[: len("GuardDuty")]
    mine = {k: v for k, v in functions.items() if k.startswith(prefix)}
    assert len(mine) == 2  # the handler and the provider framework's onEvent function
    for fn in mine.values():
        group_id = fn["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert groups[group_id]["DeletionPolicy"] == "Delete"


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        ("false", "false"),
        ("true", "true"),
        ("force", "force"),
        ("FORCE", "force"),
        (False, "false"),
    ],
)
def test_sample_findings_context_reaches_the_detector_resource(value, mode):
    from stacks.app import build_app

    app = build_app({"sample_findings": value})
    (stack,) = [c for c in app.node.children if hasattr(c, "guardduty")]
    assert stack.guardduty.sample_findings.value == mode  # the property the handler reads


def test_a_bad_sample_findings_context_names_the_three_choices():
    from stacks.app import build_app

    with pytest.raises(ValueError, match="expected true, false or force"):
        build_app({"sample_findings": "always"})
