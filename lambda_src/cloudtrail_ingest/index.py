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
from collections import Counter
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
_RECORD_START = b'{"eventVersion":"'
_FIRST = b'{"Records":[' + _RECORD_START
_BETWEEN = b'},{"eventVersion":"'  # one record's end and the next one's start
_LAST = b"}]}"
_EMPTY = b'{"Records":[]}'
_EVENT_VERSION = b'"eventVersion"'
_INSIGHT = b'"AwsCloudTrailInsight"'  # an Insight event's eventType
# The pieces of CloudTrail's layout, after a record's '{"eventVersion":"':
_IDENTITY = rb'[^"\\]*","userIdentity":\{"type":"'  # the version, then userIdentity's type
_PRINCIPAL = rb'[A-Za-z]+","principalId":"([^"\\]*)"'  # any type, then its principalId
_SERVICE = rb'(AWSService)","invokedBy":"[^"\\]*"\},"eventTime":"'  # a service on its own
# Matched at the start of a record's text:
_HEAD = re.compile(_IDENTITY + _PRINCIPAL)
_AWS_SERVICE = re.compile(_IDENTITY + _SERVICE)
_SOURCE_IP = re.compile(
    rb'\},"eventTime":"[^"\\]*","eventSource":"[^"\\]*","eventName":"[^"\\]*",'
    rb'"awsRegion":"[^"\\]*","sourceIPAddress":"([^"\\]*)"'
)
# All at once: a record in the common layout, as (service, principal, ip). From principalId,
# runs of non-braces and any '}' not followed by ',"eventTime":"' are taken possessively (no
# backtracking): the match goes to the first '},"eventTime":"', as _SOURCE_IP's search does.
_RECORD = (
    re.escape(_RECORD_START)
    + _IDENTITY
    + rb"(?:"
    + _SERVICE
    + rb"|"
    + _PRINCIPAL
    + rb'(?:[^}]++|\}(?!,"eventTime":"))*+'
    + _SOURCE_IP.pattern
    + rb")"
)
_FIRST_RECORD = re.compile(_RECORD)  # matched where the first record starts
_NEXT_RECORD = re.compile(rb"\}," + _RECORD)  # found after it: each later record, from its '},{'
_SERVICE_ITEM = (None, "aws-service-principal")


class CloudTrailLog:
    """One log file that read in full. Its items, in record order, are either a scanned
    (principalId, sourceIPAddress) pair of bytes or a parsed record dict for get_tuple().

    A log read by a worker process (see common.WorkerPool) arrives already worked: no items, its
    tuples and skip counts computed there, and only the first records it may have to print."""

    def __init__(self, name: str, items: list, data: bytes = b""):
        self.name = name
        self.items = items
        self.count = len(items)
        self._data = data  # the scanned JSON, kept only to print the first records
        self.worked: tuple | None = None  # (ipv4_only, tuples, skip counts) from a worker
        self._first: list | None = None

    def first_records(self, n: int) -> list:
        """Up to n records as dicts (for printing), parsing only what is shown."""
        if n <= 0:
            return []
        if self._first is not None:
            return self._first[:n]
        if not self._data:
            return self.items[:n]
        pieces = self._data[len(_FIRST) : -len(_LAST)].split(_BETWEEN, n)[:n]
        return [common.loads(_RECORD_START + piece + b"}") for piece in pieces]


def _scan(data: bytes) -> list | None:
    """The items of a compact CloudTrail file, or None to parse the file whole.

    Splitting on '},{"eventVersion":"' gives each record's text (a JSON string cannot hold an
    unescaped quote, so the separator only occurs between objects). A scanned pair is exact:
    the head regex is anchored at the record's start, so principalId is userIdentity's own;
    the first '},"eventTime":"' closes userIdentity; captures exclude backslashes, so they
    hold no JSON escapes. Any other record is parsed; if that fails the file is parsed whole.
    A file whose records all fit is scanned by one regex findall() over its whole text
    (_FIRST_RECORD, _NEXT_RECORD): the same result, with no Python code run per record.
    """
    if data == _EMPTY:
        return []
    if not (data.startswith(_FIRST) and data.endswith(_LAST)):
        return None
    # Whole-text checks (C speed) keep the scan exact: every "eventVersion" must be a record
    # start (else a record not starting with it would merge into the one before it), and an
    # Insight event, which may carry a userIdentity yet is no API call, or any \u escape that
    # could spell one, sends the file to the full parse.
    records = data.count(_EVENT_VERSION)
    if _INSIGHT in data:
        return None
    if b"\\" in data and b"\\u" in data:  # memchr first: most files hold no backslash at all
        return None
    # Every record in the common layout (nearly always): one match and one findall from its end.
    # The findall's hits do not overlap and each starts at a '},{"eventVersion":"', so if there
    # is one per remaining "eventVersion", each lies within its own record (it ends before the
    # next one's '},{') and is what the record-by-record scan below would find there.
    first = _FIRST_RECORD.match(data, len(_FIRST) - len(_RECORD_START))
    if first is not None:
        hits = _NEXT_RECORD.findall(data, first.end())
        if len(hits) + 1 == records:
            hits.insert(0, first.groups())
            return [_SERVICE_ITEM if svc else (principal, ip) for svc, principal, ip in hits]
    pieces = data[len(_FIRST) : -len(_LAST)].split(_BETWEEN)
    if len(pieces) != records:
        return None
    items = []
    append, head_match, ip_search = items.append, _HEAD.match, _SOURCE_IP.search
    service_match, loads = _AWS_SERVICE.match, common.loads
    for piece in pieces:
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
            append(loads(_RECORD_START + piece + b"}"))
        except ValueError:
            return None
    return items


def load_log(name: str, blob: bytes) -> tuple[CloudTrailLog | None, tuple | None]:
    """(the file's log, None) if it is a readable CloudTrail log file, decided whole; else
    (None, (reason, detail)) for skip_file()."""
    data, skip = common.try_decompress(blob)
    if skip is not None:
        return None, skip
    # The scan relies on gzip's CRC for integrity; an uncompressed file is parsed whole.
    data = data.strip()
    scanned = _scan(data) if blob[:2] == b"\x1f\x8b" else None
    if scanned is not None:
        log = CloudTrailLog(name, scanned, data)
    else:
        document, skip = common.try_parse(data, common.loads)
        if skip is not None:
            return None, skip
        records = document.get("Records") if isinstance(document, dict) else None
        if not isinstance(records, list):
            return None, ("not-a-cloudtrail-log", None)
        log = CloudTrailLog(name, records)
    if log.count == 0:
        return None, ("no-records", None)
    return log, None


def read_log_files(
    sources: list[str],
    summary: common.Summary,
    *,
    workers: int = 1,
    ipv4_only: bool = False,
    print_limit: int = 0,
) -> Iterator[CloudTrailLog]:
    """Each readable CloudTrail log file, in order, one at a time, decided whole before it is
    yielded. With workers > 1 the files are decompressed, scanned and turned into tuples in
    that many worker processes, one file each in flight (see common.WorkerPool); the logs come
    back in file order with their tuples ready for get_tuples(), and the same skips are
    counted."""
    blobs = common.iter_blobs(sources, summary)
    pool = common.WorkerPool.start(workers, _work) if workers > 1 else None
    if pool is None:
        for name, blob in blobs:
            log, skip = load_log(name, blob)
            if skip is not None:
                common.skip_file(summary, name, *skip)
                continue
            summary.files_read += 1
            yield log
        return
    try:
        records = 0  # records of the logs yielded so far: at most print_limit more to print

        def finished(name: str, result: tuple) -> CloudTrailLog | None:
            nonlocal records
            if result[0] == "skip":
                common.skip_file(summary, name, *result[1])
                return None
            _, count, csv, n, skips, first = result
            log = CloudTrailLog(name, [])
            log.count, log._first = count, first
            log.worked = (ipv4_only, common.CsvTuples(csv, n), skips)
            records += count
            summary.files_read += 1
            return log

        for name, blob in blobs:  # the next file is read before waiting for a worker
            done = pool.next_result() if pool.full() else None  # frees the worker it goes to
            pool.submit(name, blob, ipv4_only, max(0, print_limit - records))
            log = finished(*done) if done is not None else None
            if log is not None:
                yield log
        while pool.pending():
            log = finished(*pool.next_result())
            if log is not None:
                yield log
    finally:
        pool.close()


def _work(name: str, blob: bytes, ipv4_only: bool, print_n: int) -> tuple:
    """A worker's whole job for one file: a compact, picklable answer."""
    log, skip = load_log(name, blob)
    if skip is not None:
        return ("skip", skip)
    skips: Counter = Counter()
    tuples = _tuples_of(log, ipv4_only, skips)
    return ("log", log.count, tuples.csv, len(tuples), skips, log.first_records(print_n))


def get_tuples(log: CloudTrailLog, *, ipv4_only: bool = False, skipped=None) -> common.CsvTuples:
    """The <principal ID, IP address> tuples of a log file's records, in order: get_tuple() of
    each parsed record; the same rules, through a cache, for each scanned pair. They come as
    CsvTuples, a sequence of tuples held as the CSV lines output.write() writes."""
    if log.worked is not None and log.worked[0] == ipv4_only:  # done by a worker process
        if skipped is not None:
            skipped.update(log.worked[2])
        return log.worked[1]
    return _tuples_of(log, ipv4_only, skipped)


def _tuples_of(log: CloudTrailLog, ipv4_only: bool, skipped) -> common.CsvTuples:
    """get_tuples() without a worker: each item's CSV line (or skip reason) once per distinct
    scanned (principalId, sourceIPAddress) pair, through a cache; parsed records individually."""
    lines = _LINES[ipv4_only]
    if len(lines) > 200_000:  # busy accounts repeat a few thousand pairs; keep memory flat
        lines.clear()
    get = lines.get
    try:  # a scanned file: items are all pairs (hashable), nearly all seen before
        found = [
            line if (line := get(item)) is not None else _pair_line(item, ipv4_only)
            for item in log.items
        ]
    except TypeError:  # parsed records (dicts) among them
        found = [
            _record_line(item, ipv4_only, skipped)
            if type(item) is dict
            else (line if (line := get(item)) is not None else _pair_line(item, ipv4_only))
            for item in log.items
        ]
    skips = [line for line in found if not line]  # empty lines: the records that gave none
    if skipped is not None:
        for skip in skips:
            if skip.reason is not None:  # None: get_tuple() has counted it already
                skipped[skip.reason] += 1
    return common.CsvTuples(b"".join(found), len(found) - len(skips))


class _Skip(bytes):
    """An empty CSV line that says why the record gave no tuple."""

    reason: str | None


def _skip(reason: str | None) -> _Skip:
    skip = _SKIPS.get(reason)
    if skip is None:
        skip = _SKIPS[reason] = _Skip()
        skip.reason = reason
    return skip


_SKIPS: dict[str | None, _Skip] = {}
_COUNTED = _skip(None)


def _pair_line(item: tuple, ipv4_only: bool) -> bytes:
    """The CSV line of a scanned pair, by get_tuple()'s rules, remembered for next time."""
    principal_id, source = item
    if principal_id is None:  # skipped by the scan, source is the reason
        line = _skip(source)
    else:
        principal = common.principal_of(principal_id.decode())
        address, reason = common.classify_address(source.decode(), ipv4_only)
        if principal is None:
            reason = "bad-principal-id"
        line = _skip(reason) if reason is not None else f"{principal},{address}\n".encode()
    _LINES[ipv4_only][item] = line
    return line


def _record_line(record: dict, ipv4_only: bool, skipped) -> bytes:
    found = get_tuple(record, ipv4_only=ipv4_only, skipped=skipped)
    return _COUNTED if found is None else f"{found[0]},{found[1]}\n".encode()


_LINES: dict[bool, dict[tuple, bytes]] = {False: {}, True: {}}


def handler(event, context):
    """Entry point. The event is ignored in the workshop; the CLI passes sources and output."""
    config = common.config_from(event, default_key=DEFAULT_OUTPUT_KEY)
    print_limit = event.get("print_limit", PRINT_LIMIT) if isinstance(event, dict) else PRINT_LIMIT
    summary = common.Summary()
    ipv4_only, skipped = config.ipv4_only, summary.skipped
    output = common.TupleOutput(config.output)
    printed = 0
    logs = None
    try:
        logs = read_log_files(
            config.sources,
            summary,
            workers=common.worker_count(),
            ipv4_only=ipv4_only,
            print_limit=print_limit,
        )
        for log in logs:
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
        if logs is not None:
            logs.close()  # a failed run stops its worker processes now
        output.discard()
        raise
    if summary.output is None:
        LOG.warning("no tuples written: exercise step not done yet, or no usable input")
    result = summary.as_dict()
    LOG.info("cloudtrail ingest done: %s", result)
    return result
