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
import operator
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
# Matched at the start of a record's text after '{"eventVersion":"': userIdentity's own type and
# principalId, or a service acting on its own (userIdentity is exactly {type, invokedBy}).
_HEAD = re.compile(
    rb'[^"\\]*","userIdentity":\{"type":"(?:[A-Za-z]+","principalId":"([^"\\]*)"'
    rb'|(AWSService)","invokedBy":"[^"\\]*"\},"eventTime":")'
)
_SOURCE_IP = re.compile(
    rb'\},"eventTime":"[^"\\]*","eventSource":"[^"\\]*","eventName":"[^"\\]*",'
    rb'"awsRegion":"[^"\\]*","sourceIPAddress":"([^"\\]*)"'
)
# A record holding either is parsed: an Insight event with a userIdentity would otherwise give a
# tuple, and a \\u escape could spell "AwsCloudTrailInsight" or a key the regexes look for.
_ODD = (b"Insight", b"\\u")
_HEAD_GROUPS = operator.methodcaller("group", 1, 2)
_IP_GROUP = operator.methodcaller("groups")


class CloudTrailLog:
    """One log file that read in full. Its items, in record order, are either a scanned
    (principalId, "AWSService", sourceIPAddress) key of bytes (the unused one None) or a parsed
    record dict for get_tuple()."""

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
    unescaped quote, so the separator only occurs between objects). A scanned key is exact:
    the head regex is anchored at the record's start, so principalId is userIdentity's own;
    the first '},"eventTime":"' closes userIdentity; captures exclude backslashes, so they
    hold no JSON escapes. The regexes run over all records at C speed (map); only a file with
    a record that does not fit goes record by record, and that record is parsed on its own.
    If that fails, or the file is not valid UTF-8, the file is parsed whole.
    """
    if data == _EMPTY:
        return []
    if not (data.startswith(_FIRST) and data.endswith(_LAST)):
        return None
    if not data.isascii():
        try:
            data.decode()
        except UnicodeDecodeError:
            return None  # not JSON: the full parse says so
    pieces = data[len(_FIRST) : -len(_LAST)].split(_BETWEEN)
    if data.count(b'"eventVersion":') != len(pieces):
        return None  # a record that does not start with eventVersion, or one nested in another
    heads = list(map(_HEAD.match, pieces))
    ips = list(map(_SOURCE_IP.search, pieces))
    odd = [piece for piece in _ODD if piece in data]  # records the regexes cannot vouch for
    if not odd and None not in heads and None not in ips:  # no Python per record
        return list(map(tuple.__add__, map(_HEAD_GROUPS, heads), map(_IP_GROUP, ips)))
    items = []
    append, loads = items.append, common.loads
    for piece, head, ip in zip(pieces, heads, ips, strict=True):
        if head is not None and ip is not None and not any(o in piece for o in odd):
            append((*head.group(1, 2), ip.group(1)))
            continue
        try:
            append(loads(b'{"eventVersion":"' + piece + b"}"))
        except ValueError:
            return None
    return items


def read_log_files(sources: list[str], summary: common.Summary) -> Iterator[CloudTrailLog]:
    """Each readable CloudTrail log file, one at a time, decided whole before it is yielded.
    The next file is decompressed in a thread meanwhile (zlib lets go of the GIL)."""
    for name, blob, data in common.iter_decompressed(sources, summary):
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
    each parsed record; the same rules, decided once per distinct key, for each scanned one."""
    pairs, reasons = _PAIRS[ipv4_only], _REASONS[ipv4_only]
    if len(pairs) > 100_000:
        pairs.clear()
        reasons.clear()
    items = log.items
    try:  # a file of scanned keys only, all seen before: no Python per record
        found = list(filter(None, map(pairs.__getitem__, items)))
    except (KeyError, TypeError):  # TypeError: a parsed record (a dict) among the items
        pass
    else:
        if skipped is not None and len(found) < len(items):
            skipped.update(filter(None, map(reasons.__getitem__, items)))
        return found
    found = []
    append = found.append
    for item in items:
        if type(item) is not tuple:
            pair = get_tuple(item, ipv4_only=ipv4_only, skipped=skipped)
            if pair is not None:
                append(pair)
            continue
        pair = pairs.get(item, _MISS)
        if pair is _MISS:
            pair, reason = _decide(item, ipv4_only)
            pairs[item], reasons[item] = pair, reason
        if pair is not None:
            append(pair)
        elif skipped is not None:
            skipped[reasons[item]] += 1
    return found


def _decide(key: tuple, ipv4_only: bool) -> tuple:
    """(tuple, None) or (None, reason) for a scanned key: get_tuple()'s rules."""
    principal_id, service, source = key
    if principal_id is None:  # service is b"AWSService": acting on its own, no principal
        return None, "aws-service-principal"
    principal = common.principal_of(principal_id.decode())
    if principal is None:
        return None, "bad-principal-id"
    ip, reason = common.classify_address(source.decode(), ipv4_only)
    return ((principal, ip), None) if ip is not None else (None, reason)


_MISS = object()
_PAIRS: dict[bool, dict[tuple, tuple | None]] = {False: {}, True: {}}
_REASONS: dict[bool, dict[tuple, str | None]] = {False: {}, True: {}}


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
