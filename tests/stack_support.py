"""One synthesized WorkshopStack per test session (jsii start-up and synth cost seconds)."""

from __future__ import annotations

import functools
import json
import re

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Template

from stacks.app import DEFAULT_STACK_NAME, build_app


@functools.cache
def workshop() -> tuple[cdk.Stack, Template]:
    """The default app's stack and template; Template.from_stack also runs cdk-nag."""
    app = build_app()
    stack = app.node.find_child(DEFAULT_STACK_NAME)
    return stack, Template.from_stack(stack)


@functools.cache
def fleet_workshop() -> tuple[cdk.Stack, Template]:
    """The fleet / Workshop Studio variant (-c fleet=true): asset parameters, participant."""
    app = build_app({"fleet": "true"})
    stack = app.node.find_child(DEFAULT_STACK_NAME)
    return stack, Template.from_stack(stack)


def newest_python_runtime_name() -> str:
    versions = [
        int(m.group(1))
        for name in dir(lambda_.Runtime)
        if (m := re.fullmatch(r"PYTHON_3_(\d+)", name))
    ]
    return f"python3.{max(versions)}"


def resources(template: Template, resource_type: str) -> dict[str, dict]:
    return template.find_resources(resource_type)


def logical_id(stack: cdk.Stack, construct) -> str:
    child = construct if isinstance(construct, cdk.CfnElement) else construct.node.default_child
    return stack.resolve(child.logical_id)


def statements_of_role(template: Template, role_logical_id: str) -> list[dict]:
    """Every statement of every AWS::IAM::Policy attached to the role."""
    found = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        roles = policy["Properties"].get("Roles", [])
        if {"Ref": role_logical_id} in roles:
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def dumps(value) -> str:
    return json.dumps(value, sort_keys=True)
