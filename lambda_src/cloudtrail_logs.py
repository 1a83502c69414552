"""Reading CloudTrail log files, for the CloudTrail ingest (staged next to its index.py).

- read_logs(): each file parsed whole, its records as dicts, in the handler's process. The
  workshop exercise runs this, and the attendee's line calls get_tuple() once per record.
- fast_handler(): the deployed solution and `secml tuples cloudtrail`. The same parse and the
  same get_tuple() once per record, in worker processes (one file each) that send back the CSV
  lines; the handler lists, reads, writes and counts. With orjson installed (the CLI, not the
  Lambda runtime) the parse is orjson's, with the stdlib's answer wherever orjson refuses.

A file is all or nothing either way: it is decompressed, parsed and checked whole before any of
its records count. (An earlier version found the two fields with a regex over the file text:
faster, but it could not tell a valid file from one with junk after the last record, or a
userIdentity from an object in requestParameters, without reading every token, which costs
what a parser costs.)
"""

from __future__ import annotations

import contextlib
import functools
import logging
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


# ---- worker processes and the fast handler ---------------------------------------------------


def csv_lines(
    records: list, get_tuple: GetTuple, ipv4_only: bool, skipped: Counter
) -> common.CsvTuples:
    """get_tuple() of each record, as the CSV lines the output writes (common.CsvTuples); the
    records that give none, and tuples that break the CSV rule, are counted in `skipped`."""
    lines = _LINES
    if len(lines) > 200_000:  # busy accounts repeat a few thousand pairs; keep memory flat
        lines.clear()
    out = []
    for record in records:
        found = get_tuple(record, ipv4_only=ipv4_only, skipped=skipped)
        if found is not None:
            line = lines.get(found)
            if line is None:
                line = lines[found] = common.tuple_line(*found) or b""
            if line:
                out.append(line)
            else:
                skipped[common.UNWRITABLE] += 1
    return common.CsvTuples(b"".join(out), len(out))


_LINES: dict[tuple, bytes] = {}


class WorkedLog:
    """What a worker sends back for one log file: its record count, tuples (as CSV lines),
    skip counts, and the first records, for printing."""

    def __init__(self, count: int, tuples: common.CsvTuples, skipped: Counter, first: list):
        self.count, self.tuples, self.skipped, self.first = count, tuples, skipped, first


def _work(get_tuple: GetTuple, name: str, blob: bytes, ipv4_only: bool, print_n: int) -> tuple:
    """A worker's whole job for one file: a compact, picklable answer."""
    records, skip = parse_log(blob)
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
