"""Builds the CDK app from context (the only place that reads context)."""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from stacks.fleet_synthesizer import AssetParameterSynthesizer
from stacks.workshop_stack import WorkshopStack


def build_app(context: dict | None = None, *, outdir: str | None = None) -> cdk.App:
    app = cdk.App(context=context or None, outdir=outdir)
    stack_name = app.node.try_get_context("stack_name") or "SecmlWorkshop"
    # -c fleet=true: one bootstrap-free template whose assets come from AssetsBucketName /
    # AssetsBucketPrefix (Workshop Studio, `secml fleet package`), plus the participant role.
    fleet = str(app.node.try_get_context("fleet") or "").lower() in ("1", "true", "yes")
    synth = {"synthesizer": AssetParameterSynthesizer(), "participant_role": True} if fleet else {}
    WorkshopStack(app, stack_name, **synth)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app
