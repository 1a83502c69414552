"""GuardDuty findings -> `principal,ip` scoring tuples (placeholder until the real handler lands).

Reads every JSON object under INPUT_PREFIX (a list of findings, or GetFindings' {"Findings": [...]})
and writes one CSV to OUTPUT_KEY in a single PUT.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os

import boto3

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def _ip(value: object, ipv4_only: bool) -> str | None:
    try:
        address = ipaddress.ip_address(str(value))
    except ValueError:
        return None
    if ipv4_only and address.version != 4:
        return None
    return address.compressed


def _tuple(finding: dict, ipv4_only: bool) -> tuple[str, str] | None:
    principal = (finding.get("Resource", {}).get("AccessKeyDetails") or {}).get("PrincipalId")
    action = (finding.get("Service") or {}).get("Action") or {}
    remote = (action.get("AwsApiCallAction") or {}).get("RemoteIpDetails") or {}
    ip = _ip(remote.get("IpAddressV4") or remote.get("IpAddressV6"), ipv4_only)
    if not principal or ip is None:
        return None
    return str(principal).split(":", 1)[0], ip


def handler(event, context):
    s3 = boto3.client("s3")
    bucket = os.environ["INPUT_BUCKET"]
    prefix = os.environ["INPUT_PREFIX"]
    ipv4_only = os.environ.get("IPV4_ONLY", "true").lower() == "true"
    lines: list[str] = []
    summary = {"objects": 0, "bad_objects": 0, "findings": 0, "tuples": 0, "skipped": 0}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if not obj["Key"].endswith(".json"):
                continue
            summary["objects"] += 1
            try:
                findings = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
                if isinstance(findings, dict):
                    findings = findings.get("Findings", [])
            except ValueError:
                summary["bad_objects"] += 1
                logger.warning("skipped unreadable object %s", obj["Key"])
                continue
            for finding in findings:
                summary["findings"] += 1
                pair = _tuple(finding, ipv4_only) if isinstance(finding, dict) else None
                if pair is None:
                    summary["skipped"] += 1
                    continue
                lines.append(f"{pair[0]},{pair[1]}\n")
    summary["tuples"] = len(lines)
    s3.put_object(
        Bucket=os.environ["OUTPUT_BUCKET"], Key=os.environ["OUTPUT_KEY"], Body="".join(lines)
    )
    logger.info("wrote tuples", extra={"summary": summary})
    return summary
