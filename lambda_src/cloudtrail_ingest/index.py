"""CloudTrail ingest (workshop exercise 2.1): CloudTrail logs -> <principal ID, IP address> tuples.

Reads every CloudTrail log file under s3://INPUT_BUCKET/INPUT_PREFIX and writes one
`principal,ip` line per usable event to s3://OUTPUT_BUCKET/OUTPUT_KEY: the training data for
IP Insights. Records that give no tuple (AWS services acting for you, "AWS Internal", host
names, records without the fields) are skipped and counted by reason; files that cannot be read
(truncated gzip, not JSON, digest files) are skipped whole and counted.
Reading the files is in cloudtrail_logs.py, the rest both functions share in ingest_common.py.
"""

from __future__ import annotations

if __package__:  # imported as lambda_src.cloudtrail_ingest.index (CLI, offline demo, tests)
    from lambda_src import cloudtrail_logs as logs
    from lambda_src import ingest_common as common
else:  # deployed: the two modules are staged next to this file
    import cloudtrail_logs as logs
    import ingest_common as common

PRINT_LIMIT = 25  # records printed per run: enough to see their shape, not a flood of logs
OUTPUT_KEY = "train/cloudtrail_tuples.csv"  # unless OUTPUT_KEY is set


def print_short_record(record: dict) -> None:
    """One line per CloudTrail record: when, what, who, from where."""
    if not isinstance(record, dict):
        print(f"(not a record: {type(record).__name__})")
        return
    identity = record.get("userIdentity")
    if isinstance(identity, dict):
        identity = identity.get("principalId") or identity.get("type")
    print(
        f"{record.get('eventTime')} {record.get('eventSource')} {record.get('eventName')} "
        f"principal={identity} ip={record.get('sourceIPAddress')}"
    )


def get_tuple(record: dict, *, ipv4_only: bool = False, skipped=None) -> tuple[str, str] | None:
    """The record's <principal ID, IP address>, or None (the reason counted in `skipped`)."""
    identity = record.get("userIdentity") if type(record) is dict else None
    if type(record) is not dict:
        reason = "not-a-record"
    elif record.get("eventType") == "AwsCloudTrailInsight":
        reason = "insight-event"
    elif type(identity) is not dict:
        reason = "no-user-identity"
    elif identity.get("principalId") is None:
        aws_service = identity.get("type") == "AWSService"
        reason = "aws-service-principal" if aws_service else "no-principal-id"
    elif (principal := common.principal_of(identity["principalId"])) is None:
        reason = "bad-principal-id"  # the role before ':' (not each session), if a CSV can hold it
    else:
        ip, reason = common.classify_address(record.get("sourceIPAddress"), ipv4_only)
        if ip is not None:
            return principal, ip
    if skipped is not None:
        skipped[reason] += 1
    return None


def get_tuples(records: list, *, ipv4_only: bool = False, skipped=None) -> list[tuple[str, str]]:
    """get_tuple() of each record, in order; the records that give none are counted."""
    tuples = []
    for record in records:
        found = get_tuple(record, ipv4_only=ipv4_only, skipped=skipped)
        if found is not None:
            tuples.append(found)
    return tuples


# The solution and `secml tuples` scan the files instead, by get_tuple()'s rules.  # SOLUTION
scan = logs.fast_handler(get_tuple, print_short_record, OUTPUT_KEY, PRINT_LIMIT)  # SOLUTION


def handler(event, context):
    """Entry point. The workshop's test event is ignored; the CLI passes sources and output."""
    return scan(event, context)  # SOLUTION
    run = common.Run(event, default_key=OUTPUT_KEY, print_limit=PRINT_LIMIT)
    ipv4_only, skipped = run.config.ipv4_only, run.summary.skipped
    with run:  # the tuples are written at the end, and only if the whole run succeeds
        for _name, records in logs.read_logs(run.config.sources, run.summary):
            for record in records[: run.left_to_print()]:
                print_short_record(record)
            # TODO (exercise 2.1, step 3): uncomment the line below: get_tuple() of each record.
            run.output.write(get_tuples(records, ipv4_only=ipv4_only, skipped=skipped))  # EXERCISE
            run.summary.records += len(records)
    return run.result()
