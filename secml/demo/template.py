"""What the synthesized WorkshopStack template says the demo should build locally.

The demo reads bucket and function settings from the template instead of repeating them, so the
offline run and a real deployment cannot drift apart.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from secml.errors import SecmlError

REPO_ROOT = Path(__file__).resolve().parents[2]

# Function logical ids (CDK derives them from construct paths) -> in-process handler module.
HANDLER_MODULES = {
    "CloudTrailIngest": "lambda_src.cloudtrail_ingest.index",
    "GuardDutyIngest": "lambda_src.guardduty_ingest.index",
}


@dataclass(frozen=True)
class IngestFunction:
    name: str  # CloudTrailIngest | GuardDutyIngest
    logical_id: str
    module: str
    environment: dict[str, str]  # with bucket Refs resolved to local bucket names


@dataclass
class StackPlan:
    stack_name: str
    resource_counts: Counter
    buckets: dict[str, str]  # logical id -> local bucket name
    functions: dict[str, IngestFunction]
    dataset_bucket: str  # where the BucketDeployment puts the dataset
    dataset_prefix: str = ""
    outputs: dict[str, object] = field(default_factory=dict)


def ensure_repo_on_path() -> None:
    """`stacks` and `lambda_src` live at the repo root, next to `secml`."""
    root = str(REPO_ROOT)
    if root not in sys.path:
        sys.path.insert(0, root)


def synthesize(context: dict | None = None) -> tuple[str, dict]:
    """Synthesize the CDK app in-process (about 3x faster than `npx cdk synth`) in a temp dir.

    Returns (stack name, template). cdk-nag runs as part of synth, as it does for `make synth`.
    """
    ensure_repo_on_path()
    _silence_node_eol_banner()
    with tempfile.TemporaryDirectory(prefix="secml-synth-") as outdir:
        saved = os.environ.get("CDK_OUTDIR")
        os.environ["CDK_OUTDIR"] = outdir
        try:
            from stacks.app import build_app

            assembly = build_app(context).synth()  # build_app adds cdk.json's feature flags
        except Exception as exc:  # jsii surfaces synth errors as generic exceptions
            raise SecmlError(f"cdk synth failed: {_synth_error(exc, Path(outdir))}") from exc
        finally:
            if saved is None:
                os.environ.pop("CDK_OUTDIR", None)
            else:
                os.environ["CDK_OUTDIR"] = saved
        stacks = assembly.stacks
        if len(stacks) != 1:
            raise SecmlError(f"expected one stack in the CDK app, found {len(stacks)}")
        return stacks[0].stack_name, stacks[0].template


def _silence_node_eol_banner() -> None:
    """jsii prints a 12-line banner on an end-of-life Node unless told the major version; the
    CLI sets that at start, and this covers the demo run in-process without it (tests)."""
    from secml.cli import silence_jsii_node_banner

    silence_jsii_node_banner()


def _synth_error(exc: Exception, outdir: Path) -> str:
    """One line: the error, or for a failed cdk-nag validation the rules that failed."""
    report = outdir / "validation-report.json"
    if report.is_file():
        try:
            rules = Counter(
                str(violation.get("ruleName", "?")).split("[")[0]
                for plugin in json.loads(report.read_text()).get("pluginReports", [])
                for violation in plugin.get("violations", [])
            )
        except (ValueError, AttributeError):
            rules = Counter()
        if rules:
            listed = ", ".join(f"{rule} x{n}" for rule, n in sorted(rules.items()))
            return f"cdk-nag validation failed: {listed} (`make synth` shows the details)"
    return str(exc).splitlines()[0]


def local_bucket_name(stack_name: str, logical_id: str) -> str:
    """A valid, readable S3 bucket name standing in for CloudFormation's generated one."""
    name = re.sub(r"[^a-z0-9-]", "-", f"{stack_name}-{logical_id}".lower()).strip("-")
    return name[:63].rstrip("-")


def plan_from_template(stack_name: str, template: dict) -> StackPlan:
    resources: dict[str, dict] = template.get("Resources", {})
    counts = Counter(r.get("Type", "?") for r in resources.values())
    buckets = {
        logical_id: local_bucket_name(stack_name, logical_id)
        for logical_id, r in resources.items()
        if r.get("Type") == "AWS::S3::Bucket"
    }

    def resolve(value: object, where: str) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in buckets:
            return buckets[value["Ref"]]
        raise SecmlError(f"{where}: cannot resolve {json.dumps(value)} for a local run")

    functions: dict[str, IngestFunction] = {}
    for logical_id, r in resources.items():
        if r.get("Type") != "AWS::Lambda::Function":
            continue
        for name, module in HANDLER_MODULES.items():
            if name in logical_id:
                variables = (r.get("Properties", {}).get("Environment") or {}).get("Variables", {})
                env = {k: resolve(v, f"{logical_id}.{k}") for k, v in variables.items()}
                functions[name] = IngestFunction(name, logical_id, module, env)
    missing = sorted(set(HANDLER_MODULES) - set(functions))
    if missing:
        raise SecmlError(f"the synthesized template has no {', '.join(missing)} function")

    deployments = [
        r.get("Properties", {})
        for r in resources.values()
        if r.get("Type") == "Custom::CDKBucketDeployment"
    ]
    if deployments:
        props = deployments[0]
        dataset_bucket = resolve(props.get("DestinationBucketName"), "BucketDeployment")
        dataset_prefix = props.get("DestinationBucketKeyPrefix", "") or ""
    else:  # no BucketDeployment: the dataset goes where the ingest functions read it
        dataset_bucket = functions["CloudTrailIngest"].environment["INPUT_BUCKET"]
        dataset_prefix = ""
    if dataset_prefix and not dataset_prefix.endswith("/"):
        dataset_prefix += "/"
    return StackPlan(
        stack_name=stack_name,
        resource_counts=counts,
        buckets=buckets,
        functions=functions,
        dataset_bucket=dataset_bucket,
        dataset_prefix=dataset_prefix,
        outputs=template.get("Outputs", {}),
    )
