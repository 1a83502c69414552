"""CloudTrail logs -> `principal,ip` training tuples (placeholder until the real handler lands).

Reads every object under INPUT_PREFIX of INPUT_BUCKET, writes one CSV to OUTPUT_KEY of
OUTPUT_BUCKET in a single PUT, so a failed run never leaves a partial file behind.
"""

from __future__ import annotations

import gzip
import io
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


def handler(event, context):
    s3 = boto3.client("s3")
    bucket = os.environ["INPUT_BUCKET"]
    prefix = os.environ["INPUT_PREFIX"]
    ipv4_only = os.environ.get("IPV4_ONLY", "true").lower() == "true"
    lines: list[str] = []
    summary = {"objects": 0, "bad_objects": 0, "records": 0, "tuples": 0, "skipped": 0}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            summary["objects"] += 1
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            try:
                if obj["Key"].endswith(".gz"):
                    body = gzip.decompress(body)
                records = json.loads(body).get("Records", [])
            except (OSError, EOFError, ValueError, AttributeError):
                summary["bad_objects"] += 1
                logger.warning("skipped unreadable object %s", obj["Key"])
                continue
            for record in records:
                summary["records"] += 1
                principal = str((record.get("userIdentity") or {}).get("principalId", ""))
                principal = principal.split(":", 1)[0]
                ip = _ip(record.get("sourceIPAddress"), ipv4_only)
                if not principal or ip is None:
                    summary["skipped"] += 1
                    continue
                lines.append(f"{principal},{ip}\n")
    summary["tuples"] = len(lines)
    out = io.BytesIO("".join(lines).encode())
    s3.put_object(Bucket=os.environ["OUTPUT_BUCKET"], Key=os.environ["OUTPUT_KEY"], Body=out)
    logger.info("wrote tuples", extra={"summary": summary})
    return summary
