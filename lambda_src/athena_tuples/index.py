"""Athena tuples: the CloudTrail tuple query, run by Athena, to the tuples bucket's train/ key.

The query is the workgroup's saved (named) query, deployed by the stack from
secml/sql/cloudtrail_tuples.sql. This function wraps it in UNLOAD, runs it with the filters of
the event (or none), waits, and writes the result as the one headerless `principal,ip` CSV the
notebook reads, as the CloudTrail ingest function would. UNLOAD writes several gzipped part files
(https://docs.aws.amazon.com/athena/latest/ug/unload.html: "Athena uses gzip for the JSON and
TEXTFILE formats", "results are written to multiple files in parallel") to an empty folder of its
own: they are decompressed and joined in order, then deleted.

Event (all optional): {"first_day": "2025-06-01", "last_day": "2025-06-30",
"accounts": "111122223333,444455556666", "regions": "us-east-1", "ipv4_only": true}
"""

from __future__ import annotations

import itertools
import logging
import os
import time
import uuid
import zlib

import boto3

if __package__:  # imported as lambda_src.athena_tuples.index (tests)
    from lambda_src.athena_tuples import params
else:  # deployed: params.py is next to this file
    import params

LOG = logging.getLogger("secml.athena")
POLL_SECONDS = 2.0
STOP_MARGIN_MS = 60_000  # stop the query while there is time left to say so
# USD per TB scanned and the minimum billed per query: Athena SQL's list price
# (https://aws.amazon.com/athena/pricing/). For the estimate in the result only.
PRICE_PER_TB = 5.0
MIN_BILLED_BYTES = 10 * 1000**2
TRUE_WORDS = {"1", "true", "yes", "on"}

_clients: dict = {}


def client(name: str):
    if name not in _clients:
        _clients[name] = boto3.client(name)
    return _clients[name]


def flag(value: object) -> bool:
    return value if isinstance(value, bool) else str(value or "").strip().lower() in TRUE_WORDS


def unload_statement(query: str, destination: str) -> str:
    """The tuple query as UNLOAD to headerless, comma-separated text (TEXTFILE: no quoting; the
    query admits no comma, quote or newline in a principal, and addresses hold none)."""
    if "'" in destination:
        raise ValueError("destination holds a quote")
    return (
        f"UNLOAD ({query})\nTO '{destination}'\nWITH (format = 'TEXTFILE', field_delimiter = ',')"
    )


def wait(query_id: str, context) -> dict:
    """Poll until the query ends, printing its state and progress at every poll."""
    athena = client("athena")
    started = time.monotonic()
    while True:
        execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        state = execution["Status"]["State"]
        scanned = execution.get("Statistics", {}).get("DataScannedInBytes", 0)
        print(f"{time.monotonic() - started:6.0f}s {state} scanned {scanned / 1e9:.3f} GB")
        if state in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return execution
        left = context.get_remaining_time_in_millis() if context else None
        if left is not None and left < STOP_MARGIN_MS:
            athena.stop_query_execution(QueryExecutionId=query_id)
            raise TimeoutError(f"query {query_id} still running near the function's time limit")
        time.sleep(POLL_SECONDS)


def part_keys(bucket: str, prefix: str) -> list[str]:
    pages = client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


def join_parts(bucket: str, keys: list[str], path: str) -> int:
    """Decompress each part (gzip, by content) into one local file; the number of lines."""
    lines = 0
    with open(path, "wb") as out:
        for key in keys:
            body = client("s3").get_object(Bucket=bucket, Key=key)["Body"]
            first = body.read(2)
            inflate = zlib.decompressobj(wbits=31) if first == b"\x1f\x8b" else None
            last = b""
            for chunk in itertools.chain([first], body.iter_chunks(1 << 20)):
                data = inflate.decompress(chunk) if inflate else chunk
                while inflate and inflate.eof and inflate.unused_data:  # several gzip members
                    rest = inflate.unused_data
                    inflate = zlib.decompressobj(wbits=31)
                    data += inflate.decompress(rest)
                if data:
                    out.write(data)
                    lines += data.count(b"\n")
                    last = data[-1:]
            if inflate and not inflate.eof:
                raise EOFError(f"s3://{bucket}/{key}: compressed part ended early")
            if last and last != b"\n":
                out.write(b"\n")
                lines += 1
    return lines


def delete_keys(bucket: str, keys: list[str]) -> None:
    for start in range(0, len(keys), 1000):
        batch = [{"Key": key} for key in keys[start : start + 1000]]
        client("s3").delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})


def handler(event, context):
    env = os.environ
    ev = event if isinstance(event, dict) else {}
    values = params.query_parameters(
        first_day=ev.get("first_day"),
        last_day=ev.get("last_day"),
        accounts=ev.get("accounts"),
        regions=ev.get("regions"),
        ipv4_only=flag(ev.get("ipv4_only", env.get("IPV4_ONLY"))),
    )
    named = client("athena").get_named_query(NamedQueryId=env["NAMED_QUERY_ID"])["NamedQuery"]
    results_bucket = env["RESULTS_BUCKET"]
    prefix = f"{env.get('UNLOAD_PREFIX', 'unload/')}{uuid.uuid4()}/"
    statement = unload_statement(named["QueryString"], f"s3://{results_bucket}/{prefix}")
    query_id = client("athena").start_query_execution(
        QueryString=statement,
        QueryExecutionContext={"Database": named["Database"]},
        WorkGroup=env["WORKGROUP"],
        ExecutionParameters=params.as_literals(values),
    )["QueryExecutionId"]
    print(f"query {query_id}: UNLOAD to s3://{results_bucket}/{prefix}")
    try:
        execution = wait(query_id, context)
        keys = part_keys(results_bucket, prefix)
        state = execution["Status"]["State"]
        if state != "SUCCEEDED":
            reason = execution["Status"].get("StateChangeReason", "")
            raise RuntimeError(f"query {query_id} {state}: {reason}")
        scanned = execution.get("Statistics", {}).get("DataScannedInBytes", 0)
        path = f"/tmp/tuples-{uuid.uuid4()}.csv"
        try:
            lines = join_parts(results_bucket, keys, path)
            output = None
            if lines:
                output = f"s3://{env['OUTPUT_BUCKET']}/{env['OUTPUT_KEY']}"
                client("s3").upload_file(
                    path,
                    env["OUTPUT_BUCKET"],
                    env["OUTPUT_KEY"],
                    ExtraArgs={"ContentType": "text/csv"},
                )
        finally:
            if os.path.exists(path):
                os.unlink(path)
    finally:  # also after a failure or a stop: whatever the query left behind
        delete_keys(results_bucket, part_keys(results_bucket, prefix))
    result = {
        "query_execution_id": query_id,
        "tuples_written": lines,
        "output": output,
        "parts": len(keys),
        "bytes_scanned": scanned,
        "estimated_cost_usd": round(max(scanned, MIN_BILLED_BYTES) / 1e12 * PRICE_PER_TB, 6),
    }
    LOG.info("athena tuples done: %s", result)
    return result
