"""Reading CloudTrail log files, for the CloudTrail ingest (staged next to its index.py).

- read_logs(): each file parsed whole, its records as dicts, in the handler's process. The
  workshop exercise runs this, and the attendee's line calls get_tuple() once per record.
- fast_handler(): the deployed solution and `secml tuples cloudtrail`. The same get_tuple()
  once per record, in worker processes (one file each) that send back the CSV lines; the
  handler lists, reads, writes and counts. With msgspec installed (the CLI, the demo) a file is
  decoded into just the fields get_tuple() reads (read_fields()), with the full parse deciding
  wherever that reader cannot promise the same answer; with orjson the full parse is orjson's,
  with the stdlib's answer wherever orjson refuses. The Lambda runtime has neither.

A file is all or nothing either way: it is decompressed, parsed and checked whole before any of
its records count. (An earlier version found the two fields with a regex over the file text:
faster, but it could not tell a valid file from one with junk after the last record, or a
userIdentity from an object in requestParameters, without reading every token, which costs
what a parser costs.)
"""

from __future__ import annotations

import contextlib
import functools
import gc
import inspect
import logging
import sys
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

if __package__:  # imported as lambda_src.cloudtrail_logs (CLI, offline demo, tests)
    from lambda_src import ingest_common as common
else:  # deployed: staged next to index.py
    import ingest_common as common

LOG = logging.getLogger("secml.ingest")
GetTuple = Callable[..., "tuple[str, str] | None"]


# ---- the plain reader: every record parsed ---------------------------------------------------


def parse_log(blob: bytes, *, fields: bool = False) -> tuple[list | None, tuple | None]:
    """(records, None) of a readable CloudTrail log file, decided whole; else
    (None, (reason, detail)) for common.skip_file(). With `fields`, the records are read by
    read_fields() (only what the shipped get_tuple() reads) where it can promise the answer."""
    data, skip = common.try_decompress(blob)
    if skip is not None:
        return None, skip
    found = read_fields(data) if fields else None
    if found is not None:
        records, once = found
    else:
        document, skip = common.try_parse(data, common.loads)
        if skip is not None:
            return None, skip
        records = document.get("Records") if isinstance(document, dict) else None
        if not isinstance(records, list):
            return None, ("not-a-cloudtrail-log", None)
        once = False
    if not once and common.top_level_key_repeated(data, "Records"):
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


# ---- the field reader: a log file decoded into what get_tuple() reads -------------------------

try:  # installed with the CLI and the demo, not in the Lambda runtime
    import msgspec
except ImportError:  # pragma: no cover - exercised by tests that set FIELD_READER to None
    msgspec = None

_MAX_DEPTH = 200  # nesting the field reader takes on; deeper files go to the full parse

if msgspec is not None:
    _UNSET = msgspec.UNSET
    _NOT_AN_OBJECT = None | bool | int | float | str | list  # decoded as the stdlib does

    class _Identity(msgspec.Struct, gc=False):
        principalId: Any = _UNSET
        type: Any = _UNSET

    class _Record(msgspec.Struct, gc=False):
        userIdentity: _Identity | _NOT_AN_OBJECT | msgspec.UnsetType = _UNSET
        sourceIPAddress: Any = _UNSET
        eventType: Any = _UNSET

    class _Log(msgspec.Struct, gc=False):
        Records: list[_Record | _NOT_AN_OBJECT]

    FIELD_READER: Any = msgspec.json.Decoder(_Log)
    _RECORDS = msgspec.json.Decoder(list[_Record | _NOT_AN_OBJECT])
    _OBJECT = msgspec.json.Decoder(dict)
    _DECODE_ERRORS: tuple = (msgspec.DecodeError, RecursionError)
else:  # pragma: no cover

    class _Identity:  # never instantiated: type(x) is _Identity is always false
        pass

    class _Record:
        pass

    FIELD_READER = None
    _DECODE_ERRORS = ()


def read_fields(data: bytes) -> tuple[list, bool] | None:
    """(records, once): the records of a log file with only the fields the shipped get_tuple()
    reads (userIdentity's principalId and type, sourceIPAddress, eventType; records that are not
    objects as the stdlib parses them), and whether the top-level Records key was shown to
    appear once (_records_alone()); or None where the full parse must decide.

    msgspec validates the whole document and keeps the last of a repeated key, as json.loads
    does; what it does not check, or checks differently, goes to the full parse: bytes that are
    not UTF-8 (it skips the strings of fields it does not keep unchecked), a UTF-8 BOM, NaN and
    Infinity, a number past a float in a field it keeps, lone surrogates, and nesting deeper than
    _MAX_DEPTH (the stdlib's limit is the interpreter's recursion limit)."""
    if FIELD_READER is None:
        return None
    if not data.isascii():
        try:
            data.decode("utf-8", "surrogatepass")  # what json.loads(bytes) accepts
        except UnicodeDecodeError:
            return None
    limit = sys.getrecursionlimit()
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    sys.setrecursionlimit(depth + _MAX_DEPTH)  # msgspec counts its nesting against it
    try:
        try:
            records = _records_alone(data)
        except _DECODE_ERRORS:  # not that layout: the whole document decides
            records = None
        if records is not None:
            return records, True
        return FIELD_READER.decode(data).Records, False
    except _DECODE_ERRORS:
        return None
    finally:
        sys.setrecursionlimit(limit)


_WHITESPACE = b" \t\n\r"  # JSON's, no more (bytes.strip() would take \f and \v too)


def _records_alone(data: bytes) -> list | None:
    """The records of a log laid out as CloudTrail writes it, decoded from the Records value
    alone, with the key shown to appear once without reading the whole text again; None where
    the layout is another (then read_fields() decodes the whole document, and the caller counts
    the key in the text). Shown once when the first "Records" in the text is a key whose value
    runs to the object's closing brace (so nothing follows it; a key nested deeper would leave
    its containers' closing brackets in that span, which is then not one JSON value), and the
    text before the value, closed with `null}`, is a JSON object with no other key that reads
    Records, spelled plainly or with \\u escapes. Raises msgspec's errors as the decoders do."""
    key = data.find(b'"Records"')
    if key <= 0 or data[key - 1] == 0x5C:  # a backslash: the tail of a longer key
        return None
    start = key + 9
    while start < len(data) and data[start] in _WHITESPACE:
        start += 1
    if data[start : start + 1] != b":":
        return None
    start += 1
    end = len(data.rstrip(_WHITESPACE)) - 1
    if end <= start or data[end] != 0x7D:  # "}"
        return None
    head = data[:start]
    if len(common.spelled_key("Records").findall(head)) != 1:
        return None
    _OBJECT.decode(head + b"null}")
    return _RECORDS.decode(memoryview(data)[start:end])


def _as_dict(record: Any) -> Any:
    """A record from read_fields() as the dict get_tuple() takes (only the fields read)."""
    if type(record) is not _Record:
        return record
    out: dict = {}
    identity = record.userIdentity
    if type(identity) is _Identity:
        identity = {
            k: v
            for k, v in (("principalId", identity.principalId), ("type", identity.type))
            if v is not _UNSET
        }
    for key, value in (
        ("userIdentity", identity),
        ("sourceIPAddress", record.sourceIPAddress),
        ("eventType", record.eventType),
    ):
        if value is not _UNSET:
            out[key] = value
    return out


# ---- worker processes and the fast handler ---------------------------------------------------


def csv_lines(
    records: list, get_tuple: GetTuple, ipv4_only: bool, skipped: Counter
) -> common.CsvTuples:
    """get_tuple() of each record, as the CSV lines the output writes (common.CsvTuples); the
    records that give none, and tuples that break the CSV rule, are counted in `skipped`.

    For the shipped get_tuple() (proven_get_tuple()) a record of the usual shape (a dict, not an
    Insight event, a userIdentity dict, principalId and sourceIPAddress strings) has an answer
    that depends on those two strings and ipv4_only alone: get_tuple() runs once per distinct
    pair and its answer (the CSV line, or the skip reason) is reused for the pair's other records.
    Any other record, and every record for an edited get_tuple(), gets get_tuple() of its own."""
    if not proven_get_tuple(get_tuple):
        return _each_record(records, get_tuple, ipv4_only, skipped)
    pairs = _PAIRS[ipv4_only]
    if len(pairs) > _CACHE_LIMIT:  # busy accounts repeat a few thousand pairs; keep memory flat
        pairs.clear()
    out: list[bytes] = []
    append = out.append
    for record in records:
        principal_id = address = None
        if type(record) is _Record:  # from read_fields()
            identity = record.userIdentity
            if type(identity) is _Identity and record.eventType != _INSIGHT:
                principal_id, address = identity.principalId, record.sourceIPAddress
        elif type(record) is dict:
            identity = record.get("userIdentity")
            if type(identity) is dict and record.get("eventType") != _INSIGHT:
                principal_id, address = identity.get("principalId"), record.get("sourceIPAddress")
        if type(principal_id) is str and type(address) is str:
            key = (principal_id, address)
            answer = pairs.get(key)
            if answer is None:
                answer = pairs[key] = _answer(_as_dict(record), get_tuple, ipv4_only)
            if type(answer) is bytes:
                append(answer)
            else:
                skipped[answer] += 1
            continue
        line = _line_of(get_tuple(_as_dict(record), ipv4_only=ipv4_only, skipped=skipped))
        if line:
            append(line)
        elif line is not None:
            skipped[common.UNWRITABLE] += 1
    return common.CsvTuples(b"".join(out), len(out))


def _each_record(
    records: list, get_tuple: GetTuple, ipv4_only: bool, skipped: Counter
) -> common.CsvTuples:
    """csv_lines() with get_tuple() called on every record: for an edited get_tuple(), and the
    reference the cached path is tested against."""
    out = []
    for record in records:
        line = _line_of(get_tuple(record, ipv4_only=ipv4_only, skipped=skipped))
        if line:
            out.append(line)
        elif line is not None:
            skipped[common.UNWRITABLE] += 1
    return common.CsvTuples(b"".join(out), len(out))


def _line_of(found: tuple | None) -> bytes | None:
    """The CSV line of a tuple from get_tuple() (b"" if it breaks the rule), None for none."""
    if found is None:
        return None
    line = _LINES.get(found)
    if line is None:
        if len(_LINES) > _CACHE_LIMIT:
            _LINES.clear()
        line = _LINES[found] = common.tuple_line(*found) or b""
    return line


def _answer(record: dict, get_tuple: GetTuple, ipv4_only: bool) -> bytes | str:
    """get_tuple()'s answer for a record, as csv_lines() caches it: the CSV line, or the reason
    it gives no line (get_tuple() counts exactly one when it returns None)."""
    reasons: Counter = Counter()
    line = _line_of(get_tuple(record, ipv4_only=ipv4_only, skipped=reasons))
    if line is None:
        (reason,) = reasons
        return reason
    return line or common.UNWRITABLE


_CACHE_LIMIT = 200_000
_INSIGHT = "AwsCloudTrailInsight"
_LINES: dict[tuple, bytes] = {}
_PAIRS: dict[bool, dict[tuple[str, str], bytes | str]] = {False: {}, True: {}}

# CRC-32 of the source of get_tuple() in cloudtrail_ingest/index.py, the function csv_lines()'s
# cache was checked against (it reads principalId, sourceIPAddress, eventType, the identity's
# type, and nothing else). Edit get_tuple() and this no longer matches: every record then gets
# get_tuple() of its own, until someone checks the cache's assumptions and updates this. A check
# against edits, not against an adversary (hashlib would load OpenSSL, 3.6 MB, in each worker).
GET_TUPLE_CRC32 = 799265409


@functools.lru_cache(maxsize=16)
def proven_get_tuple(get_tuple: GetTuple) -> bool:
    """Whether get_tuple is the shipped one, whose answers csv_lines() may reuse."""
    try:
        source = inspect.getsource(get_tuple)
    except Exception:  # no source (a builtin, a partial, a REPL): unproven, so every record
        return False  # gets a get_tuple() call of its own
    return zlib.crc32(source.encode()) == GET_TUPLE_CRC32


class WorkedLog:
    """What a worker sends back for one log file: its record count, tuples (as CSV lines),
    skip counts, and the first records, for printing."""

    def __init__(self, count: int, tuples: common.CsvTuples, skipped: Counter, first: list):
        self.count, self.tuples, self.skipped, self.first = count, tuples, skipped, first


def _work(get_tuple: GetTuple, name: str, blob: bytes, ipv4_only: bool, print_n: int) -> tuple:
    """A worker's whole job for one file: a compact, picklable answer.

    The cyclic garbage collector is off meanwhile: a parsed log is hundreds of thousands of
    dicts and lists, none in a cycle, and the collector would walk them again and again while
    they are built (a tenth of the time) and once more when it is switched back on, so the
    file's objects are freed (by reference counting) before it is."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _work_file(get_tuple, blob, ipv4_only, print_n)
    finally:
        if enabled:
            gc.enable()


def _work_file(get_tuple: GetTuple, blob: bytes, ipv4_only: bool, print_n: int) -> tuple:
    fields = not print_n and proven_get_tuple(get_tuple)  # read_fields() checks FIELD_READER
    records, skip = parse_log(blob, fields=fields)  # printed records are read whole
    if skip is not None:
        return ("skip", skip)
    skipped: Counter = Counter()
    tuples = csv_lines(records, get_tuple, ipv4_only, skipped)
    return ("log", len(records), tuples.csv, len(tuples), skipped, records[:print_n])


def read_worked_logs(
    sources: list[str],
    summary: common.Summary,
    get_tuple: GetTuple,
    *,
    workers: int = 1,
    ipv4_only: bool = False,
    print_limit: int = 0,
) -> Iterator[WorkedLog]:
    """Each readable log file under the sources, in order, worked: parsed and turned into
    tuples by get_tuple(), in `workers` worker processes (see common.WorkerPool; in this one if
    workers is 1 or they cannot start). Files come back in file order, so the output, printed
    records and counts are a sequential run's, and memory holds one file per worker."""
    work = functools.partial(_work, get_tuple)
    blobs = common.iter_blobs(sources, summary)
    records = 0  # records of the logs yielded so far: at most print_limit more to print

    def finished(name: str, result: tuple) -> WorkedLog | None:
        nonlocal records
        if result[0] == "skip":
            common.skip_file(summary, name, *result[1])
            return None
        _, count, csv, n, skipped, first = result
        records += count
        summary.files_read += 1
        return WorkedLog(count, common.CsvTuples(csv, n), skipped, first)

    pool = common.WorkerPool.start(workers, work) if workers > 1 else None
    if pool is None:
        for name, blob in blobs:
            log = finished(name, work(name, blob, ipv4_only, max(0, print_limit - records)))
            if log is not None:
                yield log
        return
    try:
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


def fast_handler(
    get_tuple: GetTuple, print_record: Callable[[dict], None], output_key: str, print_limit: int
):
    """The CloudTrail ingest handler with worker processes, get_tuple()'s rules and
    print_record() for the first print_limit records: what the solution deploys."""

    def handler(event, context):
        run = common.Run(event, default_key=output_key, print_limit=print_limit)
        logs = read_worked_logs(
            run.config.sources,
            run.summary,
            get_tuple,
            workers=common.worker_count(),
            ipv4_only=run.config.ipv4_only,
            print_limit=run.print_limit,
        )
        with run, contextlib.closing(logs):  # a failed run stops its worker processes now
            for log in logs:
                for record in log.first[: run.left_to_print()]:
                    print_record(record)
                run.output.write(log.tuples)
                run.summary.skipped.update(log.skipped)
                run.summary.records += log.count
        return run.result()

    return handler
