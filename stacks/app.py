"""Builds the CDK app from context (the only place that reads context)."""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from stacks.workshop_stack import WorkshopStack


def build_app(context: dict | None = None) -> cdk.App:
    app = cdk.App(context=context or None)
    stack_name = app.node.try_get_context("stack_name") or "SecmlWorkshop"
    WorkshopStack(app, stack_name)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app
