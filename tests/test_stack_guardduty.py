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


def test_detector_resource_asks_for_sample_findings_by_default(synthesized):
    stack, template = synthesized
    (detector,) = resources(template, "Custom::GuardDutyDetector").values()
    assert detector["Properties"]["SampleFindings"] == "true"
    assert detector["Properties"]["Tags"] == {"secml:stack": stack.stack_name}
    assert detector["DeletionPolicy"] == "Delete"


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


def test_sample_findings_context_reaches_the_construct():
    from stacks.app import build_app

    app = build_app({"sample_findings": "false"})
    (stack,) = [c for c in app.node.children if hasattr(c, "guardduty")]
    assert stack.guardduty.sample_findings is False
