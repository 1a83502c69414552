"""The attendee policy of the fleet / Workshop Studio template grants what the guide's steps
need (tests/attendee_steps.py), scoped to the stack's own resources, and nothing more."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.attendee_steps import GUIDE_STEPS, UNSCOPED, needed_actions
from tests.stack_support import as_list, dumps, fleet_workshop, logical_id, resources

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "workshop.md"


@pytest.fixture(scope="module")
def fleet():
    return fleet_workshop()


@pytest.fixture(scope="module")
def statements(fleet):
    _, template = fleet
    (policy,) = resources(template, "AWS::IAM::ManagedPolicy").values()
    return policy["Properties"]["PolicyDocument"]["Statement"]


def granted(statements) -> dict[str, list]:
    """action -> every resource it is granted on."""
    found: dict[str, list] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow" and "Condition" not in statement
        for action in as_list(statement["Action"]):
            found.setdefault(action, []).extend(as_list(statement["Resource"]))
    return found


@pytest.mark.parametrize("quote", [quote for quote, _ in GUIDE_STEPS])
def test_every_step_of_the_table_is_still_in_the_guide(quote):
    assert quote in GUIDE.read_text(encoding="utf-8")


def test_policy_grants_exactly_what_the_guide_steps_need(statements):
    assert set(granted(statements)) == needed_actions()


def test_console_lists_and_guardduty_reads_alone_are_unscoped(statements):
    for action, where in granted(statements).items():
        if action in UNSCOPED:
            assert where == ["*"], action
        else:
            assert "*" not in where, action


def test_attendee_can_start_and_open_only_the_stacks_notebook(fleet, statements):
    stack, _ = fleet
    instance = {"Fn::GetAtt": [logical_id(stack, stack.notebook.instance), "NotebookInstanceArn"]}
    actions = granted(statements)
    for action in (
        "sagemaker:StartNotebookInstance",
        "sagemaker:CreatePresignedNotebookInstanceUrl",
        "sagemaker:DescribeNotebookInstance",
    ):
        assert actions[action] == [instance], action


def test_attendee_reads_the_outputs_of_this_stack_only(statements):
    assert granted(statements)["cloudformation:DescribeStacks"] == [{"Ref": "AWS::StackId"}]


def test_attendee_edits_and_runs_only_the_two_ingest_functions(fleet, statements):
    stack, _ = fleet
    functions = [
        {"Fn::GetAtt": [logical_id(stack, fn), "Arn"]}
        for fn in (stack.ingest.cloudtrail_fn, stack.ingest.guardduty_fn)
    ]
    actions = granted(statements)
    for action in ("lambda:UpdateFunctionCode", "lambda:InvokeFunction", "lambda:GetFunction"):
        assert actions[action] == functions, action


def test_attendee_reads_only_the_workshop_buckets(fleet, statements):
    stack, _ = fleet
    buckets = {logical_id(stack, b) for b in (stack.data.data_bucket, stack.data.tuples_bucket)}
    for action in ("s3:GetObject", "s3:ListBucket"):
        where = dumps(granted(statements)[action])
        assert all(bucket in where for bucket in buckets), action
        assert len(granted(statements)[action]) == 2, action
