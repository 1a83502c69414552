"""The notebook role and the SageMaker Python SDK v3's own role validation.

ModelTrainer validates the execution role it is given with iam:SimulatePrincipalPolicy and
iam:GetRole. The role grants neither, on purpose: these tests pin, against the installed SDK,
that the SDK goes on when both are denied, and that it would refuse the role if it could
simulate it (the SDK's smoke test asks for VPC actions on "*" the workshop role must not have).
"""

from __future__ import annotations

import types

import boto3
import pytest
from botocore.stub import Stubber

from tests.stack_support import as_list, logical_id, statements_of_role, workshop

ROLE = "arn:aws:iam::123456789012:role/SecmlWorkshop-NotebookExecutionRole-abc"


@pytest.fixture(scope="module")
def resolver():
    from sagemaker.core.helper import iam_role_resolver  # a slow import: only here

    return iam_role_resolver


def _session(client):
    return types.SimpleNamespace(boto_session=types.SimpleNamespace(client=lambda name: client))


def test_sdk_uses_the_role_when_it_may_neither_simulate_nor_read_it(resolver, monkeypatch):
    monkeypatch.delenv("SAGEMAKER_VALIDATE_ROLE", raising=False)
    iam = boto3.client(
        "iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(iam) as stub:
        stub.add_client_error("simulate_principal_policy", "AccessDenied", http_status_code=403)
        stub.add_client_error("get_role", "AccessDenied", http_status_code=403)
        arn = resolver.resolve_and_validate_role(
            provided_role=ROLE, role_type="training", sagemaker_session=_session(iam)
        )
        stub.assert_no_pending_responses()
    assert arn == ROLE


def test_role_may_not_simulate_itself_because_the_sdk_would_then_refuse_it(resolver):
    stack, template = workshop()
    statements = statements_of_role(template, logical_id(stack, stack.notebook.role))
    on_everything = {
        action
        for s in statements
        if s["Resource"] == "*" and "Condition" not in s
        for action in as_list(s["Action"])
    }
    smoke_test = set(resolver._get_smoke_test_actions("training"))
    assert smoke_test - on_everything, "the simulation would pass: reconsider this test"
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert "iam:SimulatePrincipalPolicy" not in actions
    assert "iam:GetRole" not in actions
