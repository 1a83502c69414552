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
import re
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


# CloudTrail writes each log file as compact JSON: {"Records":[{"eventVersion":...},...]}. For
# such files the two fields a tuple needs are found by a scan anchored on that layout (no
# object per record is built); any record that does not fit it exactly is parsed on its own and
# goes through get_tuple(), and a file that does not fit at all is parsed whole.
_FIRST = b'{"Records":[{"eventVersion":"'
_BETWEEN = b'},{"eventVersion":"'  # one record's end and the next one's start
_LAST = b"}]}"
_EMPTY = b'{"Records":[]}'
# Matched at the start of a record's text after '{"eventVersion":"':
_HEAD = re.compile(rb'[^"\\]*","userIdentity":\{"type":"[A-Za-z]+","principalId":"([^"\\]*)"')
_AWS_SERVICE = re.compile(
    rb'[^"\\]*","userIdentity":\{"type":"AWSService","invokedBy":"[^"\\]*"\},"eventTime":"'
)
_SOURCE_IP = re.compile(
    rb'\},"eventTime":"[^"\\]*","eventSource":"[^"\\]*","eventName":"[^"\\]*",'
    rb'"awsRegion":"[^"\\]*","sourceIPAddress":"([^"\\]*)"'
)
_SERVICE_ITEM = (None, "aws-service-principal")


class CloudTrailLog:
    """One log file that read in full. Its items, in record order, are either a scanned
    (principalId, sourceIPAddress) pair of bytes or a parsed record dict for get_tuple()."""

    def __init__(self, name: str, items: list, data: bytes = b""):
        self.name = name
        self.items = items
        self.count = len(items)
        self._data = data  # the scanned JSON, kept only to print the first records

    def first_records(self, n: int) -> list:
        """Up to n records as dicts (for printing), parsing only what is shown."""
        if n <= 0:
            return []
        if not self._data:
            return self.items[:n]
        pieces = self._data[len(_FIRST) : -len(_LAST)].split(_BETWEEN, n)[:n]
        return [common.loads(b'{"eventVersion":"' + piece + b"}") for piece in pieces]


def _scan(data: bytes) -> list | None:
    """The items of a compact CloudTrail file, or None to parse the file whole.

    Splitting on '},{"eventVersion":"' gives each record's text (a JSON string cannot hold an
    unescaped quote, so the separator only occurs between objects). A scanned pair is exact:
    the head regex is anchored at the record's start, so principalId is userIdentity's own;
    the first '},"eventTime":"' closes userIdentity; captures exclude backslashes, so they
    hold no JSON escapes. Any other record is parsed; if that fails the file is parsed whole.
    """
    if data == _EMPTY:
        return []
    if not (data.startswith(_FIRST) and data.endswith(_LAST)):
        return None
    items = []
    append, head_match, ip_search = items.append, _HEAD.match, _SOURCE_IP.search
    service_match, loads = _AWS_SERVICE.match, common.loads
    for piece in data[len(_FIRST) : -len(_LAST)].split(_BETWEEN):
        head = head_match(piece)
        if head is not None:
            ip = ip_search(piece, head.end())
            if ip is not None:
                append((head.group(1), ip.group(1)))
                continue
        elif service_match(piece) is not None:
            append(_SERVICE_ITEM)  # an AWS service acting on its own: no principal to learn
            continue
        try:
            append(loads(b'{"eventVersion":"' + piece + b"}"))
        except ValueError:
            return None
    return items


def read_log_files(sources: list[str], summary: common.Summary) -> Iterator[CloudTrailLog]:
    """Each readable CloudTrail log file, one at a time, decided whole before it is yielded."""
    for name, blob in common.iter_blobs(sources, summary):
        data = common.decompress(name, blob, summary)
        if data is None:
            continue
        # The scan relies on gzip's CRC for integrity; an uncompressed file is parsed whole.
        scanned = _scan(data.strip()) if blob[:2] == b"\x1f\x8b" else None
        if scanned is not None:
            log = CloudTrailLog(name, scanned, data.strip())
        else:
            document = common.parse_file(name, data, summary, common.loads)
            if document is None:
                continue
            records = document.get("Records") if isinstance(document, dict) else None
            if not isinstance(records, list):
                common.skip_file(summary, name, "not-a-cloudtrail-log")
                continue
            log = CloudTrailLog(name, records)
        if log.count == 0:
            common.skip_file(summary, name, "no-records")
            continue
        summary.files_read += 1
        yield log


def get_tuples(log: CloudTrailLog, *, ipv4_only: bool = False, skipped=None) -> list:
    """The <principal ID, IP address> tuples of a log file's records, in order: get_tuple() of
    each parsed record; the same rules, through caches, for each scanned pair."""
    principals, addresses = _PRINCIPALS, _ADDRESSES[ipv4_only]
    if len(principals) > 100_000 or len(addresses) > 100_000:
        principals.clear()
        addresses.clear()
    tuples = []
    append = tuples.append
    for item in log.items:
        if type(item) is not tuple:
            found = get_tuple(item, ipv4_only=ipv4_only, skipped=skipped)
            if found is not None:
                append(found)
            continue
        principal_id, source = item
        if principal_id is None:  # skipped by the scan, source is the reason
            if skipped is not None:
                skipped[source] += 1
            continue
        principal = principals.get(principal_id, _MISS)
        if principal is _MISS:
            principal = principals[principal_id] = common.principal_of(principal_id.decode())
        address = addresses.get(source)
        if address is None:
            address = addresses[source] = common.classify_address(source.decode(), ipv4_only)
        if principal is None:
            if skipped is not None:
                skipped["bad-principal-id"] += 1
        elif address[0] is None:
            if skipped is not None:
                skipped[address[1]] += 1
        else:
            append((principal, address[0]))
    return tuples


_MISS = object()
_PRINCIPALS: dict[bytes, str | None] = {}
_ADDRESSES: dict[bool, dict[bytes, tuple]] = {False: {}, True: {}}


def handler(event, context):
    """Entry point. The event is ignored in the workshop; the CLI passes sources and output."""
    config = common.config_from(event, default_key=DEFAULT_OUTPUT_KEY)
    print_limit = event.get("print_limit", PRINT_LIMIT) if isinstance(event, dict) else PRINT_LIMIT
    summary = common.Summary()
    ipv4_only, skipped = config.ipv4_only, summary.skipped
    output = common.TupleOutput(config.output)
    printed = 0
    try:
        for log in read_log_files(config.sources, summary):
            for record in log.first_records(print_limit - printed):
                print_short_record(record)
                printed += 1
            # TODO (exercise 2.1, step 5): uncomment the line below (get_tuple() of each record).
            output.write(get_tuples(log, ipv4_only=ipv4_only, skipped=skipped))  # EXERCISE
            summary.records += log.count
        if print_limit and summary.records > printed:
            print(f"... and {summary.records - printed} more records (not printed)")
        summary.tuples_written = output.count
        summary.output = output.publish()
    except BaseException:
        output.discard()
        raise
    if summary.output is None:
        LOG.warning("no tuples written: exercise step not done yet, or no usable input")
    result = summary.as_dict()
    LOG.info("cloudtrail ingest done: %s", result)
    return result
