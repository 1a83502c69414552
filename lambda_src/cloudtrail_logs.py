"""Reading CloudTrail log files, for the CloudTrail ingest (staged next to its index.py).

Two ways to the same tuples, both through the get_tuple() that index.py defines:

- read_logs(): each file parsed whole, its records as dicts. The workshop exercise runs this:
  the attendee's uncommented line calls get_tuple() once per record.
- fast_handler(): the deployed solution and `secml tuples cloudtrail`. A scan of the file's text
  finds each record's principalId and sourceIPAddress without building a dict per record, worker
  processes take one file each, and get_tuple() runs once per distinct (principal, address) pair
  (a record holding just those fields) and on every record the scan cannot read exactly.
  Tests check that both give the same output and counts on adversarial layouts.

A file is all or nothing either way: it is decompressed, checked and parsed (or scanned) whole
before any of its records count.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterator

if __package__:  # imported as lambda_src.cloudtrail_logs (CLI, offline demo, tests)
    from lambda_src import ingest_common as common
else:  # deployed: staged next to index.py
    import ingest_common as common

LOG = logging.getLogger("secml.ingest")
GetTuple = Callable[..., "tuple[str, str] | None"]


# ---- the plain reader: every record parsed ---------------------------------------------------


def parse_log(blob: bytes) -> tuple[list | None, tuple | None]:
    """(records, None) of a readable CloudTrail log file, decided whole; else
    (None, (reason, detail)) for common.skip_file()."""
    data, skip = common.try_decompress(blob)
    if skip is not None:
        return None, skip
    document, skip = common.try_parse(data, common.loads)
    if skip is not None:
        return None, skip
    records = document.get("Records") if isinstance(document, dict) else None
    if not isinstance(records, list):
        return None, ("not-a-cloudtrail-log", None)
    if common.top_level_key_repeated(data, "Records"):
        return None, ("not-a-cloudtrail-log", "the Records key appears more than once")
    if not records:
        return None, ("no-records", None)
    return records, None


def read_logs(sources: list[str], summary: common.Summary) -> Iterator[tuple[str, list]]:
    """(name, records) of each readable log file under the sources, one file at a time; the
    others are skipped whole and counted in the summary."""
    for name, blob in common.iter_blobs(sources, summary):
        records, skip = parse_log(blob)
        if skip is not None:
            common.skip_file(summary, name, *skip)
            continue
        summary.files_read += 1
        yield name, records


# ---- the scan --------------------------------------------------------------------------------

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
_SERVICE_ITEM = (None, None)  # an AWS service acting on its own: no principalId


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


def scan(data: bytes) -> list | None:
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
            append(_SERVICE_ITEM)
            continue
        try:
            append(loads(_RECORD_START + piece + b"}"))
        except ValueError:
            return None
    return items


def load_log(name: str, blob: bytes) -> tuple[CloudTrailLog | None, tuple | None]:
    """(the file's log, None) if it is a readable CloudTrail log file, decided whole; else
    (None, (reason, detail)) for common.skip_file()."""
    data, skip = common.try_decompress(blob)
    if skip is not None:
        return None, skip
    # The scan relies on gzip's CRC for integrity; an uncompressed file is parsed whole.
    data = data.strip()
    scanned = scan(data) if blob[:2] == b"\x1f\x8b" else None
    if scanned is not None:
        log = CloudTrailLog(name, scanned, data)
    else:
        records, skip = parse_log(data)
        if skip is not None:
            return None, skip
        log = CloudTrailLog(name, records)
    if log.count == 0:
        return None, ("no-records", None)
    return log, None


# ---- tuples, by get_tuple()'s rules ----------------------------------------------------------


def tuples_of(log: CloudTrailLog, get_tuple: GetTuple, *, ipv4_only: bool = False, skipped=None):
    """get_tuple() of each record of the log, in order, as common.CsvTuples (the CSV lines they
    are written as); the records that give none are counted in `skipped`. A scanned pair goes
    through get_tuple() once (as a record of just those fields) and is remembered."""
    if log.worked is not None and log.worked[0] == ipv4_only:  # done by a worker process
        if skipped is not None:
            skipped.update(log.worked[2])
        return log.worked[1]
    lines = _LINES.setdefault((get_tuple, ipv4_only), {})
    if len(lines) > 200_000:  # busy accounts repeat a few thousand pairs; keep memory flat
        lines.clear()
    get = lines.get
    pair = functools.partial(_pair_line, lines, get_tuple, ipv4_only)
    try:  # a scanned file: items are all pairs (hashable), nearly all seen before
        found = [line if (line := get(item)) is not None else pair(item) for item in log.items]
    except TypeError:  # parsed records (dicts) among them
        found = [
            _line(item, get_tuple, ipv4_only)
            if type(item) is dict
            else (line if (line := get(item)) is not None else pair(item))
            for item in log.items
        ]
    skips = [line for line in found if not line]  # empty lines: the records that gave none
    if skipped is not None:
        skipped.update(skip.reason for skip in skips)
    return common.CsvTuples(b"".join(found), len(found) - len(skips))


class _Skip(bytes):
    """An empty CSV line that says why the record gave no tuple."""

    reason: str


def _skip(reason: str) -> _Skip:
    skip = _SKIPS.get(reason)
    if skip is None:
        skip = _SKIPS[reason] = _Skip()
        skip.reason = reason
    return skip


_SKIPS: dict[str, _Skip] = {}


def _line(record: dict, get_tuple: GetTuple, ipv4_only: bool) -> bytes:
    """The record's CSV line by get_tuple(), or the reason it gave none."""
    reasons: Counter = Counter()
    found = get_tuple(record, ipv4_only=ipv4_only, skipped=reasons)
    if found is None:
        return _skip(next(iter(reasons), "no-tuple"))
    line = common.tuple_line(*found)
    return _skip(common.UNWRITABLE) if line is None else line


def _pair_line(lines: dict, get_tuple: GetTuple, ipv4_only: bool, item: tuple) -> bytes:
    """The CSV line of a scanned pair, by get_tuple(), remembered for next time."""
    principal_id, source = item
    if principal_id is None:  # a service acting on its own (the scan checked the type)
        record: dict = {"userIdentity": {"type": "AWSService"}}
    else:
        identity = {"principalId": principal_id.decode()}
        record = {"userIdentity": identity, "sourceIPAddress": source.decode()}
    line = lines[item] = _line(record, get_tuple, ipv4_only)
    return line


_LINES: dict[tuple, dict[tuple, bytes]] = {}


# ---- worker processes and the fast handler ---------------------------------------------------


def read_log_files(
    sources: list[str],
    summary: common.Summary,
    get_tuple: GetTuple,
    *,
    workers: int = 1,
    ipv4_only: bool = False,
    print_limit: int = 0,
) -> Iterator[CloudTrailLog]:
    """Each readable CloudTrail log file, in order, one at a time, decided whole before it is
    yielded. With workers > 1 the files are decompressed, scanned and turned into tuples in
    that many worker processes, one file each in flight (see common.WorkerPool); the logs come
    back in file order with their tuples ready for tuples_of(), and the same skips are
    counted."""
    blobs = common.iter_blobs(sources, summary)
    work = functools.partial(_work, get_tuple)
    pool = common.WorkerPool.start(workers, work) if workers > 1 else None
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


def _work(get_tuple: GetTuple, name: str, blob: bytes, ipv4_only: bool, print_n: int) -> tuple:
    """A worker's whole job for one file: a compact, picklable answer."""
    log, skip = load_log(name, blob)
    if skip is not None:
        return ("skip", skip)
    skips: Counter = Counter()
    tuples = tuples_of(log, get_tuple, ipv4_only=ipv4_only, skipped=skips)
    return ("log", log.count, tuples.csv, len(tuples), skips, log.first_records(print_n))


def fast_handler(
    get_tuple: GetTuple, print_record: Callable[[dict], None], output_key: str, print_limit: int
):
    """The CloudTrail ingest handler on the scan and the workers, with get_tuple()'s rules and
    print_record() for the first print_limit records: what the solution deploys."""

    def handler(event, context):
        run = common.Run(event, default_key=output_key, print_limit=print_limit)
        ipv4_only, skipped = run.config.ipv4_only, run.summary.skipped
        logs = read_log_files(
            run.config.sources,
            run.summary,
            get_tuple,
            workers=common.worker_count(),
            ipv4_only=ipv4_only,
            print_limit=run.print_limit,
        )
        with run, contextlib.closing(logs):  # a failed run stops its worker processes now
            for log in logs:
                for record in log.first_records(run.left_to_print()):
                    print_record(record)
                run.output.write(tuples_of(log, get_tuple, ipv4_only=ipv4_only, skipped=skipped))
                run.summary.records += log.count
        return run.result()

    return handler
