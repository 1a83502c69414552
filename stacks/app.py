"""Builds the CDK app from context (the only place that reads context)."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from stacks.athena import DEFAULT_SCAN_LIMIT_GB, AthenaSettings, trail_source_from_context
from stacks.fleet_synthesizer import AssetParameterSynthesizer
from stacks.guardduty import SampleFindings
from stacks.workshop_stack import WorkshopStack

DEFAULT_STACK_NAME = "SecmlWorkshop"
CDK_JSON = Path(__file__).resolve().parents[1] / "cdk.json"


def cdk_json_context() -> dict:
    """cdk.json's context (the feature flags): `cdk synth` passes it to the app, but an app built
    in-process (tests, `secml fleet package`) would miss it and synthesize another template."""
    return json.loads(CDK_JSON.read_text()).get("context", {})


def _flag(app: cdk.App, key: str, default: bool) -> bool:
    value = app.node.try_get_context(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ValueError(f"context {key}={value!r}: expected true or false")


def _positive_int(app: cdk.App, key: str, default: int) -> int:
    value = app.node.try_get_context(key)
    if value is None:
        return default
    try:
        number = int(str(value))
    except ValueError:
        raise ValueError(f"context {key}={value!r}: expected a whole number") from None
    if number < 1:
        raise ValueError(f"context {key}={value!r}: expected at least 1")
    return number


def _sample_findings(app: cdk.App) -> SampleFindings:
    """true: only into a detector the stack creates; false: never; force: into any (noisy in an
    organisation that runs GuardDuty centrally; see docs/facilitator.md)."""
    if str(app.node.try_get_context("sample_findings")).strip().lower() == "force":
        return SampleFindings.FORCE
    try:
        wanted = _flag(app, "sample_findings", True)
    except ValueError:
        value = app.node.try_get_context("sample_findings")
        raise ValueError(
            f"context sample_findings={value!r}: expected true, false or force"
        ) from None
    return SampleFindings.IF_CREATED if wanted else SampleFindings.NEVER


def _email(app: cdk.App, key: str) -> str | None:
    value = app.node.try_get_context(key)
    if value in (None, ""):
        return None
    text = str(value).strip()
    local, _, domain = text.partition("@")
    if not local or "." not in domain or any(c.isspace() for c in text):
        raise ValueError(f"context {key}={value!r}: expected an e-mail address")
    return text


def _athena(app: cdk.App) -> AthenaSettings | None:
    """-c athena=true [-c athena_trail_bucket=B -c athena_trail_prefix=AWSLogs/o-x/
    -c athena_accounts=111122223333,... -c athena_regions=... -c athena_first_day=yyyy/MM/dd]
    [-c athena_scan_limit_gb=N] (docs/athena.md)."""
    if not _flag(app, "athena", False):
        return None

    def names(key: str) -> list[str]:
        return [v.strip() for v in str(app.node.try_get_context(key) or "").split(",") if v.strip()]

    source = trail_source_from_context(
        app.node.try_get_context("athena_trail_bucket"),
        app.node.try_get_context("athena_trail_prefix"),
        names("athena_accounts"),
        names("athena_regions"),
        app.node.try_get_context("athena_first_day"),
    )
    limit = _positive_int(app, "athena_scan_limit_gb", DEFAULT_SCAN_LIMIT_GB)
    return AthenaSettings(source=source, scan_limit_gb=limit)


def build_app(context: dict | None = None, *, outdir: str | None = None) -> cdk.App:
    app = cdk.App(context={**cdk_json_context(), **(context or {})}, outdir=outdir)
    stack_name = app.node.try_get_context("stack_name") or DEFAULT_STACK_NAME
    # -c fleet=true: one bootstrap-free template whose assets come from AssetsBucketName /
    # AssetsBucketPrefix (Workshop Studio, `secml fleet package`), plus the participant role.
    fleet = _flag(app, "fleet", False)
    synth = {"synthesizer": AssetParameterSynthesizer(), "participant_role": True} if fleet else {}
    WorkshopStack(
        app,
        stack_name,
        solutions=_flag(app, "solutions", False),
        sample_findings=_sample_findings(app),
        notebook_instance_type=app.node.try_get_context("notebook_instance_type") or "ml.t3.medium",
        notebook_idle_minutes=_positive_int(app, "notebook_idle_minutes", 60),
        detection=_flag(app, "detection", False),
        detection_email=_email(app, "detection_email"),
        athena=_athena(app),
        **synth,
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app
