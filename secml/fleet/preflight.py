"""`fleet preflight`: is every roster account ready for the workshop, the day before?

Per account and region, through the same assumed role as `provision`:

- **region**: SageMaker and GuardDuty are offered there (botocore's endpoint data) and the
  account can call it (an opt-in region that is not enabled fails the first call).
- **GuardDuty**: no detector (the stack creates one) or an enabled one (the stack uses it and
  leaves it on destroy) is ready; a SUSPENDED detector is not: the stack uses the region's
  detector as it is, and a suspended one produces no findings for exercise 1.
- **SageMaker quotas**: the notebook instance, the training job and the endpoint each need one
  instance of their type. New accounts often have 0 for some types; a quota increase takes
  hours to days, hence the day before.

Quota values come from Service Quotas: ``ListServiceQuotas`` gives the applied values, which
exist only for quotas that were ever changed; for the others ``ListAWSDefaultServiceQuotas``
gives the default (https://docs.aws.amazon.com/servicequotas/2019-06-24/apireference/API_ListServiceQuotas.html).
SageMaker names its instance quotas "<type> for <use> usage", e.g. "ml.m5.large for training
job usage"; that name, not a code, is stable across instance types.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from secml.fleet.aws import client_config, describe_error, with_backoff
from secml.fleet.roster import Target

DEFAULT_NOTEBOOK_TYPE = "ml.t3.medium"
DEFAULT_TRAINING_TYPE = "ml.m5.large"
DEFAULT_ENDPOINT_TYPE = "ml.m5.large"
SAGEMAKER = "sagemaker"


@dataclass(frozen=True)
class InstanceNeed:
    label: str  # column title
    use: str  # as in the quota name: "notebook instance", "training job", "endpoint"
    instance_type: str
    count: int = 1

    @property
    def quota_name(self) -> str:
        return f"{self.instance_type} for {self.use} usage"


def instance_needs(
    notebook: str = DEFAULT_NOTEBOOK_TYPE,
    training: str = DEFAULT_TRAINING_TYPE,
    endpoint: str = DEFAULT_ENDPOINT_TYPE,
) -> list[InstanceNeed]:
    return [
        InstanceNeed("notebook", "notebook instance", notebook),
        InstanceNeed("training", "training job", training),
        InstanceNeed("endpoint", "endpoint", endpoint),
    ]


@dataclass
class Check:
    ok: bool
    detail: str


@dataclass
class Readiness:
    target: Target
    checks: dict[str, Check] = field(default_factory=dict)  # column -> result

    @property
    def ready(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks.values())


def check_region(region: str, available: Callable[[str], Sequence[str]]) -> Check:
    missing = [s for s in (SAGEMAKER, "guardduty") if region not in available(s)]
    if missing:
        return Check(False, f"{' and '.join(missing)} not offered in {region}")
    return Check(True, region)


def check_guardduty(guardduty: Any) -> Check:
    ids: list[str] = []
    for page in guardduty.get_paginator("list_detectors").paginate():
        ids.extend(page.get("DetectorIds", []))
    if not ids:
        return Check(True, "none (the stack creates one)")
    status = with_backoff(lambda: guardduty.get_detector(DetectorId=ids[0]))["Status"]
    if status == "ENABLED":
        return Check(True, f"enabled ({ids[0][:8]}..., kept on destroy)")
    # The console's "Suspend GuardDuty" is UpdateDetector Enable=false: GetDetector then says
    # DISABLED (https://docs.aws.amazon.com/guardduty/latest/APIReference/API_GetDetector.html).
    return Check(False, f"suspended ({ids[0][:8]}..., {status}): enable it for findings")


def quota_values(quotas: Any, names: set[str]) -> dict[str, float]:
    """Applied values where set, defaults otherwise, for the quota names asked for."""
    found: dict[str, float] = {}
    for operation in ("list_service_quotas", "list_aws_default_service_quotas"):
        if names <= set(found):
            break
        for page in quotas.get_paginator(operation).paginate(ServiceCode=SAGEMAKER):
            for quota in page.get("Quotas", []):
                name = quota.get("QuotaName", "")
                if name in names and name not in found and "Value" in quota:
                    found[name] = float(quota["Value"])
    return found


def check_quotas(quotas: Any, needs: Sequence[InstanceNeed]) -> dict[str, Check]:
    values = quota_values(quotas, {n.quota_name for n in needs})
    checks = {}
    for need in needs:
        value = values.get(need.quota_name)
        if value is None:
            checks[need.label] = Check(False, f"no quota '{need.quota_name}' in this region")
        elif value < need.count:
            checks[need.label] = Check(
                False, f"{need.instance_type}: {value:g} (need {need.count}; request an increase)"
            )
        else:
            checks[need.label] = Check(True, f"{need.instance_type}: {value:g}")
    return checks


def check_account(
    session: Any,
    target: Target,
    needs: Sequence[InstanceNeed],
    available: Callable[[str], Sequence[str]],
) -> Readiness:
    result = Readiness(target)
    result.checks["region"] = check_region(target.region, available)
    if not result.checks["region"].ok:
        return result
    config = client_config()
    try:
        result.checks["guardduty"] = check_guardduty(session.client("guardduty", config=config))
    except Exception as exc:  # one account's refusal is a row, not the end of the run
        result.checks["guardduty"] = Check(False, describe_error(exc))
    try:
        quotas = session.client("service-quotas", config=config)
        result.checks.update(check_quotas(quotas, needs))
    except Exception as exc:
        for need in needs:
            result.checks[need.label] = Check(False, describe_error(exc))
    return result


def preflight(
    targets: Sequence[Target],
    session_factory: Callable[[Target], Any],
    needs: Sequence[InstanceNeed],
    *,
    parallel: int = 20,
    available: Callable[[str], Sequence[str]] | None = None,
) -> list[Readiness]:
    """One Readiness per target, in roster order; an account we cannot enter is not ready."""
    if available is None:
        import boto3

        session = boto3.Session()
        cache = {s: session.get_available_regions(s) for s in (SAGEMAKER, "guardduty")}
        available = cache.__getitem__

    def one(target: Target) -> Readiness:
        try:
            session = session_factory(target)
        except Exception as exc:
            return Readiness(target, {"access": Check(False, describe_error(exc))})
        return check_account(session, target, needs, available)

    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(targets)))) as pool:
        return list(pool.map(one, targets))


COLUMNS = ("region", "guardduty", "notebook", "training", "endpoint")


def render_table(results: Sequence[Readiness], title: str) -> Any:
    from rich.table import Table

    table = Table(title=title)
    for column in ("account", "attendee", *COLUMNS, "ready"):
        table.add_column(column, overflow="fold")
    for result in results:
        cells = []
        for column in COLUMNS:
            check = result.checks.get(column)
            if check is None:
                access = result.checks.get("access")
                cells.append(f"[red]{access.detail}[/]" if access and column == "region" else "-")
            else:
                cells.append(check.detail if check.ok else f"[red]{check.detail}[/]")
        verdict = "[green]yes[/]" if result.ready else "[red]NO[/]"
        table.add_row(result.target.account_id, result.target.attendee, *cells, verdict)
    return table
