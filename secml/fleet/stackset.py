"""`fleet stackset`: the Organizations-scale route, one service-managed StackSet.

CloudFormation StackSets with ``PermissionModel=SERVICE_MANAGED`` deploy into every account of
the given OUs through the Organizations trust (no role per account to assume, no roster) and,
with auto-deployment, into accounts that join those OUs later. Concurrency and failure tolerance
are the service's ``OperationPreferences``; this module sends them and waits for each operation.

Operations on one StackSet run one at a time, so every call below waits for its operation
before the next (else ``OperationInProgressException``).

Lambda reads its code from a bucket in its own region. With ``{region}`` in ``--assets-bucket``
the bucket name is overridden per region (``ParameterOverrides`` on the instances).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from secml.errors import SecmlError
from secml.fleet.aws import describe_error, with_backoff
from secml.fleet.stacks import CAPABILITIES, StackSpec

OU_RE = re.compile(r"^(ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}|r-[a-z0-9]{4,32})$")
FINISHED = {"SUCCEEDED", "FAILED", "STOPPED"}


@dataclass
class StackSetOptions:
    name: str
    ous: Sequence[str]
    regions: Sequence[str]
    max_concurrent_percentage: int = 25
    failure_tolerance_percentage: int = 10
    call_as: str = "SELF"
    poll: float = 15.0
    timeout: float = 3 * 3600

    def preferences(self) -> dict[str, Any]:
        return {
            "RegionConcurrencyType": "PARALLEL",
            "MaxConcurrentPercentage": self.max_concurrent_percentage,
            "FailureTolerancePercentage": self.failure_tolerance_percentage,
        }

    def validate(self, *, need_targets: bool = True) -> None:
        bad = [ou for ou in self.ous if not OU_RE.match(ou)]
        if bad:
            raise SecmlError(f"--ou: {', '.join(bad)} is not an OU or root id (ou-xxxx-yyyyyyyy)")
        if need_targets and not (self.ous and self.regions):
            raise SecmlError("--ou and --regions are both required")
        for name, value in (
            ("--max-concurrent-percentage", self.max_concurrent_percentage),
            ("--failure-tolerance-percentage", self.failure_tolerance_percentage),
        ):
            if not 0 <= value <= 100:
                raise SecmlError(f"{name} must be between 0 and 100, got {value}")
        if self.max_concurrent_percentage < 1:
            raise SecmlError("--max-concurrent-percentage must be at least 1")


def _template_args(spec: StackSpec, region: str) -> dict[str, Any]:
    args: dict[str, Any] = {
        "Parameters": spec.parameters_for(region),
        "Capabilities": CAPABILITIES,
    }
    if spec.use_template_url():
        args["TemplateURL"] = spec.template_url(region)
    else:
        args["TemplateBody"] = spec.template_body
    return args


def wait_for_operation(
    cf: Any,
    opts: StackSetOptions,
    operation_id: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    deadline = time.monotonic() + opts.timeout
    while True:
        op = with_backoff(
            lambda: cf.describe_stack_set_operation(
                StackSetName=opts.name, OperationId=operation_id, CallAs=opts.call_as
            )
        )["StackSetOperation"]
        status = op["Status"]
        if status in FINISHED:
            break
        if time.monotonic() > deadline:
            raise SecmlError(f"StackSet operation {operation_id} still {status} after timeout")
        sleep(opts.poll)
    if status != "SUCCEEDED":
        raise SecmlError(f"StackSet {op.get('Action', '')} {status}: {_failures(cf, opts, op)}")


def _failures(cf: Any, opts: StackSetOptions, op: dict[str, Any]) -> str:
    try:
        pages = cf.get_paginator("list_stack_set_operation_results").paginate(
            StackSetName=opts.name, OperationId=op["OperationId"], CallAs=opts.call_as
        )
        rows = [r for p in pages for r in p["Summaries"] if r.get("Status") != "SUCCEEDED"]
    except Exception as exc:
        return describe_error(exc)
    shown = [f"{r['Account']}/{r['Region']}: {r.get('StatusReason', r['Status'])}" for r in rows]
    return "; ".join(shown[:5]) + (f"; and {len(shown) - 5} more" if len(shown) > 5 else "")


def _stack_set_exists(cf: Any, opts: StackSetOptions) -> bool:
    try:
        cf.describe_stack_set(StackSetName=opts.name, CallAs=opts.call_as)
    except Exception as exc:
        if "StackSetNotFound" in str(exc) or "not found" in str(exc).lower():
            return False
        raise
    return True


def _per_region_bucket(spec: StackSpec) -> bool:
    return "{region}" in spec.assets_bucket


def deploy_stack_set(cf: Any, spec: StackSpec, opts: StackSetOptions) -> str:
    """Create or update the StackSet and its instances; returns "created" or "updated"."""
    opts.validate()
    first = opts.regions[0]
    targets = {"OrganizationalUnitIds": list(opts.ous)}
    if not _stack_set_exists(cf, opts):
        with_backoff(
            lambda: cf.create_stack_set(
                StackSetName=opts.name,
                Description=f"secml workshop environment ({spec.stack_name})",
                PermissionModel="SERVICE_MANAGED",
                AutoDeployment={"Enabled": True, "RetainStacksOnAccountRemoval": False},
                ManagedExecution={"Active": True},
                CallAs=opts.call_as,
                Tags=[{"Key": k, "Value": v} for k, v in spec.tags.items()],
                **_template_args(spec, first),
            )
        )
        action = "created"
    else:
        op = with_backoff(
            lambda: cf.update_stack_set(
                StackSetName=opts.name,
                OperationPreferences=opts.preferences(),
                CallAs=opts.call_as,
                **_template_args(spec, first),
            )
        )
        wait_for_operation(cf, opts, op["OperationId"])
        action = "updated"

    # New OUs / regions get instances; existing instances are left as they are (no-op).
    batches = [[r] for r in opts.regions] if _per_region_bucket(spec) else [list(opts.regions)]
    for regions in batches:
        overrides = (
            [{"ParameterKey": "AssetsBucketName", "ParameterValue": spec.bucket_for(regions[0])}]
            if _per_region_bucket(spec)
            else []
        )
        op = with_backoff(
            lambda regions=regions, overrides=overrides: cf.create_stack_instances(
                StackSetName=opts.name,
                DeploymentTargets=targets,
                Regions=regions,
                ParameterOverrides=overrides,
                OperationPreferences=opts.preferences(),
                CallAs=opts.call_as,
            )
        )
        wait_for_operation(cf, opts, op["OperationId"])
    return action


def delete_stack_set(cf: Any, opts: StackSetOptions) -> int:
    """Delete every instance (all OUs, all regions), then the set; returns instances removed."""
    opts.validate(need_targets=False)
    if not _stack_set_exists(cf, opts):
        raise SecmlError(f"no StackSet named {opts.name!r}")
    pages = cf.get_paginator("list_stack_instances").paginate(
        StackSetName=opts.name, CallAs=opts.call_as
    )
    instances = [s for page in pages for s in page["Summaries"]]
    if instances:
        ous = list(opts.ous) or sorted(
            {s["OrganizationalUnitId"] for s in instances if s.get("OrganizationalUnitId")}
        )
        regions = list(opts.regions) or sorted({s["Region"] for s in instances})
        if not ous:
            raise SecmlError("cannot tell which OUs the instances belong to: pass --ou")
        op = with_backoff(
            lambda: cf.delete_stack_instances(
                StackSetName=opts.name,
                DeploymentTargets={"OrganizationalUnitIds": ous},
                Regions=regions,
                RetainStacks=False,
                OperationPreferences=opts.preferences(),
                CallAs=opts.call_as,
            )
        )
        wait_for_operation(cf, opts, op["OperationId"])
    with_backoff(lambda: cf.delete_stack_set(StackSetName=opts.name, CallAs=opts.call_as))
    return len(instances)
