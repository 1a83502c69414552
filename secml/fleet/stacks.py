"""What happens in one attendee account: create or update the stack, delete it, describe it.

Each function takes a boto3 session already in the account and region, and either returns the
account's new state or raises; the runner (``secml.fleet.runner``) turns a raise into a
``failed`` row so that one account never stops the others.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secml.errors import SecmlError
from secml.fleet.aws import client_config, with_backoff
from secml.fleet.package import load_package
from secml.fleet.roster import Target
from secml.fleet.state import DELETE_FAILED, DELETED, DEPLOYED, FAILED, AccountState

# CreateStack's TemplateBody limit; larger templates must come from S3 (TemplateURL).
TEMPLATE_BODY_LIMIT = 51_200
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
DONE_OK = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}
NO_UPDATES = "No updates are to be performed"


class StackFailed(Exception):
    """The stack ended in a failed state; the message is CloudFormation's first reason."""


@dataclass
class StackSpec:
    """One template and its parameters; ``{region}`` in bucket names is filled per account."""

    stack_name: str
    template_body: str
    template_key: str
    parameters: dict[str, str] = field(default_factory=dict)
    assets_bucket: str = ""
    assets_prefix: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    def bucket_for(self, region: str) -> str:
        return self.assets_bucket.replace("{region}", region)

    def template_url(self, region: str) -> str:
        suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
        bucket = self.bucket_for(region)
        return f"https://{bucket}.s3.{region}.{suffix}/{self.assets_prefix}{self.template_key}"

    def use_template_url(self) -> bool:
        return len(self.template_body.encode()) > TEMPLATE_BODY_LIMIT

    def parameters_for(self, region: str) -> list[dict[str, str]]:
        values = dict(self.parameters)
        if "AssetsBucketName" in values:
            values["AssetsBucketName"] = self.bucket_for(region)
        return [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(values.items())]

    def fingerprint(self, region: str) -> str:
        digest = hashlib.sha256(self.template_body.encode())
        digest.update(json.dumps(self.parameters_for(region), sort_keys=True).encode())
        return digest.hexdigest()[:16]


def spec_from_package(
    directory: Path,
    *,
    stack_name: str | None = None,
    assets_bucket: str = "",
    assets_prefix: str = "",
    participant_role: str = "",
) -> StackSpec:
    package, template = load_package(directory)
    declared = template.get("Parameters", {})
    if assets_prefix and not assets_prefix.endswith("/"):
        raise SecmlError(f"--assets-prefix {assets_prefix!r} must end with '/'")
    if "AssetsBucketName" in declared and not assets_bucket:
        raise SecmlError(
            "the template loads its assets from a bucket: pass --assets-bucket "
            "(add {region} to the name for one bucket per region)"
        )
    parameters: dict[str, str] = {}
    if "AssetsBucketName" in declared:
        parameters["AssetsBucketName"] = assets_bucket
    if "AssetsBucketPrefix" in declared:
        parameters["AssetsBucketPrefix"] = assets_prefix
    if "ParticipantRoleName" in declared and participant_role:
        parameters["ParticipantRoleName"] = participant_role
    body = json.dumps(template, separators=(",", ":"), sort_keys=True)
    spec = StackSpec(
        stack_name=stack_name or package.stack_name,
        template_body=body,
        template_key=package.template_key,
        parameters=parameters,
        assets_bucket=assets_bucket,
        assets_prefix=assets_prefix,
        tags={"secml:fleet": stack_name or package.stack_name},
    )
    if spec.use_template_url() and not assets_bucket:
        raise SecmlError(
            f"the template is {len(body.encode())} bytes, over CloudFormation's "
            f"{TEMPLATE_BODY_LIMIT}-byte TemplateBody limit: upload DIR/assets/ and pass "
            "--assets-bucket so it is read from S3"
        )
    return spec


def describe_stack(cf: Any, stack_name: str) -> dict[str, Any] | None:
    try:
        stacks = with_backoff(lambda: cf.describe_stacks(StackName=stack_name))["Stacks"]
    except Exception as exc:
        if "does not exist" in str(exc):
            return None
        raise
    live = [s for s in stacks if s["StackStatus"] != "DELETE_COMPLETE"]
    return live[0] if live else None


def first_failure_reason(cf: Any, stack_name: str) -> str:
    try:
        pages = cf.get_paginator("describe_stack_events").paginate(StackName=stack_name)
        events = [e for page in pages for e in page["StackEvents"]]
    except Exception:
        return ""
    failed = [
        e
        for e in reversed(events)  # oldest first: the first failure is the cause
        if e.get("ResourceStatus", "").endswith("_FAILED")
        and "cancelled" not in e.get("ResourceStatusReason", "").lower()
    ]
    if not failed:
        return ""
    e = failed[0]
    return f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', e['ResourceStatus'])}"


def wait_until_stable(
    cf: Any,
    stack_name: str,
    *,
    poll: float,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any] | None:
    """Poll (throttling-tolerant) until the stack is no longer *_IN_PROGRESS, or gone."""
    deadline = time.monotonic() + timeout
    while True:
        stack = describe_stack(cf, stack_name)
        if stack is None or not stack["StackStatus"].endswith("_IN_PROGRESS"):
            return stack
        if time.monotonic() >= deadline:
            raise StackFailed(f"still {stack['StackStatus']} after {timeout:.0f} s")
        sleep(poll)


def notebook_url(outputs: dict[str, str]) -> str:
    """The stack output that links the attendee to the notebook (NotebookConsoleUrl)."""
    for key, value in sorted(outputs.items()):
        if "notebook" in key.lower() and key.lower().endswith("url"):
            return value
    return ""


def provision_stack(
    session: Any, target: Target, spec: StackSpec, *, poll: float, timeout: float
) -> AccountState:
    cf = session.client("cloudformation", region_name=target.region, config=client_config())
    name = spec.stack_name
    stack = describe_stack(cf, name)
    if stack and stack["StackStatus"].endswith("_IN_PROGRESS"):
        stack = wait_until_stable(cf, name, poll=poll, timeout=timeout)
    if stack and stack["StackStatus"] in ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED"):
        # A stack whose creation failed cannot be updated: start again.
        with_backoff(lambda: cf.delete_stack(StackName=name))
        wait_until_stable(cf, name, poll=poll, timeout=timeout)
        stack = None

    args: dict[str, Any] = {
        "StackName": name,
        "Parameters": spec.parameters_for(target.region),
        "Capabilities": CAPABILITIES,
        "Tags": [{"Key": k, "Value": v} for k, v in spec.tags.items()]
        + ([{"Key": "secml:attendee", "Value": target.attendee[:256]}] if target.attendee else []),
    }
    if spec.use_template_url():
        args["TemplateURL"] = spec.template_url(target.region)
    else:
        args["TemplateBody"] = spec.template_body

    if stack is None:
        stack_id = with_backoff(
            lambda: cf.create_stack(**args, OnFailure="ROLLBACK", EnableTerminationProtection=False)
        )["StackId"]
    else:
        stack_id = stack["StackId"]
        try:
            with_backoff(lambda: cf.update_stack(**args))
        except Exception as exc:
            if NO_UPDATES not in str(exc):
                raise
    final = wait_until_stable(cf, name, poll=poll, timeout=timeout)
    if final is None or final["StackStatus"] not in DONE_OK:
        status = final["StackStatus"] if final else "DELETED"
        reason = first_failure_reason(cf, name) or (final or {}).get("StackStatusReason", "")
        raise StackFailed(f"{status}: {reason}".rstrip(": "))
    outputs = {o["OutputKey"]: o["OutputValue"] for o in final.get("Outputs", [])}
    return AccountState(
        account_id=target.account_id,
        region=target.region,
        attendee=target.attendee,
        status=DEPLOYED,
        stack_id=stack_id,
        outputs=outputs,
        notebook_url=notebook_url(outputs),
        fingerprint=spec.fingerprint(target.region),
    )


LeftoverFinder = Callable[[Any, str], list[str]]


def default_leftover_finder() -> LeftoverFinder | None:
    """``secml.verify_clean.find_leftovers(session, stack_name) -> list[str]`` if it is built."""
    try:
        from secml.verify_clean import find_leftovers
    except ImportError:
        return None
    return find_leftovers


def teardown_stack(
    session: Any,
    target: Target,
    stack_name: str,
    *,
    poll: float,
    timeout: float,
    find_leftovers: LeftoverFinder | None,
) -> AccountState:
    cf = session.client("cloudformation", region_name=target.region, config=client_config())
    stack = describe_stack(cf, stack_name)
    if stack is not None:
        try:
            with_backoff(lambda: cf.delete_stack(StackName=stack_name))
        except Exception as exc:
            if "IN_PROGRESS" not in str(exc):
                raise
            # Busy (e.g. still being created): let that finish, then delete.
            wait_until_stable(cf, stack_name, poll=poll, timeout=timeout)
            with_backoff(lambda: cf.delete_stack(StackName=stack_name))
        final = wait_until_stable(cf, stack_name, poll=poll, timeout=timeout)
        if final is not None:
            reason = first_failure_reason(cf, stack_name) or final.get("StackStatusReason", "")
            raise StackFailed(f"{final['StackStatus']}: {reason}".rstrip(": "))
    # verify-clean returns records (kind, name); show them as "kind name".
    found = find_leftovers(session, stack_name) if find_leftovers else []
    leftovers = [
        f"{item.kind} {item.name}" if hasattr(item, "kind") else str(item) for item in found
    ]
    return AccountState(
        account_id=target.account_id,
        region=target.region,
        attendee=target.attendee,
        status=DELETE_FAILED if leftovers else DELETED,
        leftovers=list(leftovers),
        error=f"{len(leftovers)} leftover(s): " + ", ".join(leftovers[:5]) if leftovers else "",
    )


def describe_account(session: Any, target: Target, stack_name: str) -> AccountState:
    cf = session.client("cloudformation", region_name=target.region, config=client_config())
    stack = describe_stack(cf, stack_name)
    entry = AccountState(target.account_id, target.region, attendee=target.attendee)
    if stack is None:
        entry.status = DELETED
        return entry
    entry.stack_id = stack["StackId"]
    entry.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    entry.notebook_url = notebook_url(entry.outputs)
    if stack["StackStatus"] in DONE_OK:
        entry.status = DEPLOYED
    else:
        entry.status = FAILED
        entry.error = stack["StackStatus"]
    return entry
