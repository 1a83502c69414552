"""CloudTrail ingest (workshop exercise 2.1): CloudTrail logs -> <principal ID, IP address> tuples.

Reads every CloudTrail log file under s3://INPUT_BUCKET/INPUT_PREFIX (any number of objects),
one file at a time, and writes one `principal,ip` line per usable event to
s3://OUTPUT_BUCKET/OUTPUT_KEY, the training data for IP Insights. The principal is the
principalId before its first ':' (a role rather than each of its sessions).

Records that cannot give a tuple (AWS services acting for you, "AWS Internal", host names,
Insight events, records without the fields) are skipped and counted by reason; unreadable files
(truncated gzip, not JSON, digest files, empty deliveries) are skipped whole and counted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

if __package__:  # imported as lambda_src.cloudtrail_ingest.index (CLI, offline demo, tests)
    from lambda_src import ingest_common as common
else:  # deployed: ingest_common.py is staged next to this file
    import ingest_common as common

LOG = logging.getLogger("secml.ingest")
PRINT_LIMIT = 25  # records printed per run: enough to see their shape, not a flood of logs
DEFAULT_OUTPUT_KEY = "train/cloudtrail_tuples.csv"


def print_short_record(record: dict) -> None:
    """One line per CloudTrail record: when, what, who, from where."""
    if not isinstance(record, dict):
        print(f"(not a record: {type(record).__name__})")
        return
    identity = record.get("userIdentity")
    who = (
        identity.get("principalId") or identity.get("type") if isinstance(identity, dict) else None
    )
    print(
        f"{record.get('eventTime')} {record.get('eventSource')} {record.get('eventName')} "
        f"principal={who} ip={record.get('sourceIPAddress')}"
    )


def get_tuple(record: dict, *, ipv4_only: bool = False, skipped=None) -> tuple[str, str] | None:
    """The record's <principal ID, IP address>, or None (the reason counted in `skipped`)."""
    if type(record) is not dict:
        reason = "not-a-record"
    elif record.get("eventType") == "AwsCloudTrailInsight":
        reason = "insight-event"
    else:
        identity = record.get("userIdentity")
        if type(identity) is not dict:
            reason = "no-user-identity"
        else:
            principal_id = identity.get("principalId")
            if principal_id is None:
                aws = identity.get("type") == "AWSService"
                reason = "aws-service-principal" if aws else "no-principal-id"
            else:
                principal = common.principal_of(principal_id)
                if principal is None:
                    reason = "bad-principal-id"
                else:
                    ip, reason = common.classify_address(record.get("sourceIPAddress"), ipv4_only)
                    if ip is not None:
                        return principal, ip
    if skipped is not None:
        skipped[reason] += 1
    return None


def read_log_files(sources: list[str], summary: common.Summary) -> Iterator[tuple[str, list]]:
    """(file name, its records) for each readable CloudTrail log file, one file at a time."""
    for name, blob in common.iter_blobs(sources, summary):
        document = common.decode(name, blob, summary, common.loads)
        if document is None:
            continue
        records = document.get("Records") if isinstance(document, dict) else None
        if not isinstance(records, list):
            common._skip_file(summary, name, "not-a-cloudtrail-log")
            continue
        if not records:
            common._skip_file(summary, name, "no-records")
            continue
        summary.files_read += 1
        yield name, records


def handler(event, context):
    """Entry point. The event is ignored in the workshop; the CLI passes sources and output."""
    config = common.config_from(event, default_key=DEFAULT_OUTPUT_KEY)
    print_limit = event.get("print_limit", PRINT_LIMIT) if isinstance(event, dict) else PRINT_LIMIT
    summary = common.Summary()
    ipv4_only, skipped = config.ipv4_only, summary.skipped
    output = common.TupleOutput(config.output)
    printed = 0
    try:
        for _name, records in read_log_files(config.sources, summary):
            tuples = []
            for record in records:
                if printed < print_limit:
                    print_short_record(record)
                    printed += 1
                # TODO (exercise 2.1, step 5): uncomment the three lines below.
                tup = get_tuple(record, ipv4_only=ipv4_only, skipped=skipped)  # EXERCISE
                if tup is not None:  # EXERCISE
                    tuples.append(tup)  # EXERCISE
            summary.records += len(records)
            output.write(tuples)
        if print_limit and summary.records > printed:
            print(f"... and {summary.records - printed} more records (not printed)")
        summary.tuples_written = output.count
        summary.output = output.publish()
    except BaseException:
        output.discard()
        raise
    if summary.output is None:
        LOG.warning("no tuples written (has the TODO in handler() been done?)")
    result = summary.as_dict()
    LOG.info("cloudtrail ingest done: %s", result)
    return result
