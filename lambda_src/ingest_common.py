"""What both ingest Lambdas share (staged next to each index.py; stdlib + boto3 only).

- Sources: every object under an S3 prefix (paginated, no 1,000-object limit), or local files
  and folders for the CLI, read one at a time so memory is bounded by the largest file.
- A file is all or nothing: it is decompressed and parsed whole before any of its tuples count.
- Addresses: canonical form or a reason why not; never a non-address in the output.
- Output: tuples spool to a temporary file and are published in one step at the end, so a
  failed run never leaves a partial file behind.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import ipaddress
import json
import logging
import os
import re
import stat
import sys
import tempfile
import traceback
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

try:  # not in the Lambda runtime; much faster where it is installed (the CLI, the demo)
    import orjson
except ImportError:  # pragma: no cover - exercised by SECML_JSON=stdlib
    orjson = None


def _fast_loads(data: bytes | str):
    """orjson's parse, or the stdlib's where orjson refuses (a UTF-8 BOM, NaN, a lone surrogate
    escape, integers past 64 bits): the same answers as the Lambda runtime's json.loads, which
    accepts those, at orjson's speed for everything else."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


LOG = logging.getLogger("secml.ingest")
JSON_BACKEND = "stdlib" if orjson is None or os.environ.get("SECML_JSON") == "stdlib" else "orjson"
loads: Callable = json.loads if JSON_BACKEND == "stdlib" else _fast_loads

TRUE_WORDS = {"1", "true", "yes", "on"}


def env_flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    return str(value or "").strip().lower() in TRUE_WORDS


# ---- addresses -------------------------------------------------------------------------------

_ADDRESS_CACHE: dict[tuple[str, bool], tuple[str | None, str | None]] = {}
_CACHE_LIMIT = 200_000  # busy accounts see a few thousand distinct addresses; keep memory flat


def classify_address(value: object, ipv4_only: bool = False) -> tuple[str | None, str | None]:
    """(canonical address, None) or (None, reason it is not a usable address)."""
    if type(value) is not str:
        return None, "no-source-ip" if value is None else "not-an-ip"
    key = (value, ipv4_only)
    hit = _ADDRESS_CACHE.get(key)
    if hit is not None:
        return hit
    result = _classify(value, ipv4_only)
    if len(_ADDRESS_CACHE) >= _CACHE_LIMIT:
        _ADDRESS_CACHE.clear()
    _ADDRESS_CACHE[key] = result
    return result


_HOSTNAME = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+\.?")


def _classify(value: str, ipv4_only: bool) -> tuple[str | None, str | None]:
    text = value.strip()
    if not text:
        return None, "no-source-ip"
    if text == "AWS Internal":
        return None, "aws-internal"
    if "%" in text:  # a link-local zone id: not an Internet address
        return None, "not-an-ip"
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        if text.endswith(".amazonaws.com") or text.endswith(".amazon.com"):
            return None, "aws-service-address"
        return None, "hostname" if _HOSTNAME.fullmatch(text) else "not-an-ip"
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if addr.version == 6 and ipv4_only:
        return None, "ipv6-excluded"
    return str(addr), None  # IPv6: compressed, lower case


def principal_of(principal_id: object) -> str | None:
    """principalId before the first ':' (the role, not its session), if a tuple may hold it."""
    if type(principal_id) is not str:
        return None
    principal = _PRINCIPALS.get(principal_id, _MISSING)
    if principal is _MISSING:
        principal = principal_id.partition(":")[0].strip()
        principal = principal if tuple_field_ok(principal) else None
        if len(_PRINCIPALS) >= _CACHE_LIMIT:
            _PRINCIPALS.clear()
        _PRINCIPALS[principal_id] = principal
    return principal


_PRINCIPALS: dict[str, str | None] = {}
_MISSING = object()


# ---- what a tuple may hold -------------------------------------------------------------------
# The rule the tuples' CSV writer (here) and its readers (secml/ipinsights/data.py, SageMaker's
# CSV parser) agree on: a field is non-empty printable text (str.isprintable(): no control
# characters, line or paragraph separators, lone surrogates or other unassigned code points),
# without ',' or '"' (the file is unquoted CSV) and without whitespace at either end (readers
# strip it). Anything else is skipped and counted, never written.

UNWRITABLE = "unwritable-tuple"  # skip reason: a tuple (from get_tuple) that breaks the rule


def tuple_field_ok(text: str) -> bool:
    return (
        bool(text)
        and text.isprintable()
        and text == text.strip()
        and "," not in text
        and '"' not in text
    )


def tuple_line(principal: object, address: object) -> bytes | None:
    """The tuple's CSV line, or None if either field breaks the rule above."""
    if type(principal) is not str or type(address) is not str:
        return None
    if not (tuple_field_ok(principal) and tuple_field_ok(address)):
        return None
    return f"{principal},{address}\n".encode()


# ---- run summary -----------------------------------------------------------------------------


@dataclass
class Summary:
    files_read: int = 0
    records: int = 0
    tuples_written: int = 0
    skipped: Counter = field(default_factory=Counter)  # records/findings: reason -> count
    files_skipped: Counter = field(default_factory=Counter)  # files: reason -> count
    output: str | None = None
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "files_read": self.files_read,
            "records": self.records,
            "tuples_written": self.tuples_written,
            "skipped": dict(sorted(self.skipped.items())),
            "files_skipped": dict(sorted(self.files_skipped.items())),
            "output": self.output,
            "json_backend": "stdlib" if loads is json.loads else "orjson",
            **self.extra,
        }


# ---- configuration ---------------------------------------------------------------------------


@dataclass
class Config:
    sources: list[str]
    output: str | None
    ipv4_only: bool
    include_samples: bool


def config_from(event: object, *, default_key: str, need_input: bool = True) -> Config:
    """Environment first (as deployed); an invocation event may override (the CLI does)."""
    env = os.environ
    ev = event if isinstance(event, dict) else {}
    sources = ev.get("sources")
    if not sources:
        bucket = env.get("INPUT_BUCKET", "").strip()
        if bucket:
            sources = [f"s3://{bucket}/{env.get('INPUT_PREFIX', '').lstrip('/')}"]
        elif need_input:
            raise ValueError("INPUT_BUCKET is not set: nothing to read")
        else:
            sources = []
    output = ev.get("output")
    if not output and env.get("OUTPUT_BUCKET", "").strip():
        output = f"s3://{env['OUTPUT_BUCKET'].strip()}/{env.get('OUTPUT_KEY') or default_key}"
    if not output:
        raise ValueError("OUTPUT_BUCKET is not set: nowhere to write the tuples")
    return Config(
        sources=list(sources),
        output=output,
        ipv4_only=env_flag(ev.get("ipv4_only", env.get("IPV4_ONLY"))),
        include_samples=env_flag(ev.get("include_samples", env.get("INCLUDE_SAMPLES"))),
    )


def split_s3_uri(uri: str) -> tuple[str, str]:
    rest = uri[len("s3://") :]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise ValueError(f"not an S3 URI: {uri}")
    return bucket, key


_S3 = None


def s3_client():
    """One client per process (reused across warm invocations); honours AWS_ENDPOINT_URL."""
    global _S3
    if _S3 is None:
        import boto3

        _S3 = boto3.client("s3")
    return _S3


def reset_clients() -> None:
    """Forget cached clients (tests switch between mocked accounts and endpoints)."""
    global _S3
    _S3 = None


# ---- reading sources -------------------------------------------------------------------------


def skip_reason_for_key(key: str) -> str | None:
    """Objects that are never log data, by name: decided before downloading anything."""
    base = key.rsplit("/", 1)[-1]
    if not base:
        return "folder-marker"
    if "/CloudTrail-Digest/" in f"/{key}" or "_CloudTrail-Digest_" in base:
        return "digest-file"
    if base == "ConfigWritabilityCheckFile":
        return "config-writability-check"
    return None


# Called once for each file or object under the sources as it is read or skipped: the CLI's
# progress bar sets it; None in Lambda.
on_file: Callable[[], None] | None = None


def iter_blobs(sources: Iterable[str], summary: Summary) -> Iterator[tuple[str, bytes]]:
    """(name, raw bytes) of each data file under the sources, one at a time."""
    for source in sources:
        if source.startswith("s3://"):
            yield from _iter_s3(source, summary)
        else:
            yield from _iter_local(Path(source), summary)


def _iter_s3(uri: str, summary: Summary) -> Iterator[tuple[str, bytes]]:
    from botocore.exceptions import ClientError

    bucket, prefix = split_s3_uri(uri)
    s3 = s3_client()
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        for obj in page.get("Contents", []):
            if on_file is not None:
                on_file()
            key = obj["Key"]
            name = f"s3://{bucket}/{key}"
            reason = skip_reason_for_key(key) or ("empty-file" if obj.get("Size") == 0 else None)
            if reason:
                skip_file(summary, name, reason)
                continue
            try:
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            except ClientError as exc:
                skip_file(summary, name, "read-error", exc.response["Error"].get("Code"))
                continue
            yield name, body


def _iter_local(path: Path, summary: Summary) -> Iterator[tuple[str, bytes]]:
    for p, rel in local_files(path, summary):
        if on_file is not None:
            on_file()
        name = str(p)
        try:
            size = p.stat().st_size
            reason = skip_reason_for_key(rel) or ("empty-file" if size == 0 else None)
            if reason:
                skip_file(summary, name, reason)
                continue
            data = p.read_bytes()
        except OSError as exc:  # unreadable, or gone since the listing
            skip_file(summary, name, "read-error", exc.strerror or exc)
            continue
        yield name, data


def local_files(path: Path, summary: Summary) -> list[tuple[Path, str]]:
    """(file, path relative to the source) of each regular file under a local source, sorted.

    Symbolic links are followed, each folder and each file (by device and inode) read once: a
    link back up the tree (a loop) or a second way to the same folder or file is skipped and
    counted, as are dangling links, unreadable folders and things that are not regular files
    (FIFOs, sockets, devices), so the summary says what was not read."""
    try:
        top = path.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file or folder: {path}") from None
    if not stat.S_ISDIR(top.st_mode):
        return [(path, path.name)] if stat.S_ISREG(top.st_mode) else _not_a_file(summary, path)
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int]] = set()
    files: list[tuple[Path, str]] = []

    def unreadable(exc: OSError) -> None:
        skip_file(summary, str(exc.filename), "read-error", exc.strerror)

    for folder, dirnames, filenames in os.walk(path, followlinks=True, onerror=unreadable):
        dirnames.sort()
        filenames.sort()
        try:
            st = os.stat(folder)
        except OSError as exc:
            unreadable(exc)
            dirnames.clear()
            continue
        if (st.st_dev, st.st_ino) in seen_dirs:  # a loop, or a second link to this folder
            skip_file(summary, folder, "folder-already-read")
            dirnames.clear()
            continue
        seen_dirs.add((st.st_dev, st.st_ino))
        for filename in filenames:
            file = Path(folder, filename)
            try:
                st = file.stat()
            except OSError:  # a dangling link, or a loop of links
                skip_file(summary, str(file), "broken-link")
                continue
            if not stat.S_ISREG(st.st_mode):
                _not_a_file(summary, file)
            elif (st.st_dev, st.st_ino) in seen_files:
                skip_file(summary, str(file), "file-already-read")
            else:
                seen_files.add((st.st_dev, st.st_ino))
                files.append((file, file.relative_to(path).as_posix()))
    return sorted(files)


def _not_a_file(summary: Summary, path: Path) -> list:
    skip_file(summary, str(path), "not-a-file")
    return []


def skip_file(summary: Summary, name: str, reason: str, detail: object = None) -> None:
    summary.files_skipped[reason] += 1
    LOG.warning("skipped file %s: %s%s", name, reason, f" ({detail})" if detail else "")


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def reuse_heap(limit: int = 64 << 20) -> bool:
    """Let this process reuse freed heap memory for buffers up to `limit` bytes, rather than
    map and unmap every decompressed file afresh: by default glibc serves a file-sized buffer
    with mmap and returns it on free, so every file pays its page faults again (about half the
    time decompression takes). Memory stays bounded by the largest files' buffers. A process
    that reads one file after another (an ingest worker) calls this once; False where the C
    library has no mallopt (not glibc), which changes nothing but speed."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, limit)) and bool(mallopt(_M_TRIM_THRESHOLD, 2 * limit))


try:  # about 2x zlib's inflate where installed (the CLI, the demo); not in the Lambda runtime
    from isal import igzip, isal_zlib
except ImportError:  # pragma: no cover - exercised by tests that set igzip to None
    igzip = isal_zlib = None
GZIP_ERRORS = (EOFError, OSError, zlib.error) + ((isal_zlib.error,) if isal_zlib else ())


def gunzip(blob: bytes) -> bytes:
    """gzip.decompress in one pass (the CRC and length checked); several members too. isal's
    igzip where installed: the same answers and failures as gzip.decompress (its own exception
    class for corrupt deflate data, in GZIP_ERRORS), in about half the time."""
    if igzip is not None:
        return igzip.decompress(blob)
    d = zlib.decompressobj(wbits=31)
    data = d.decompress(blob)
    if not d.eof:
        raise EOFError("compressed file ended before the end-of-stream marker was reached")
    if d.unused_data:  # more than one gzip member (concatenated files): the general path
        return gzip.decompress(blob)
    return data


def decompress(name: str, blob: bytes, summary: Summary) -> bytes | None:
    """The file's bytes, gunzipped if gzip (by content, not by name); None if that fails.

    gzip checks the CRC and length of the whole member: a truncated or corrupt file fails here.
    """
    data, skip = try_decompress(blob)
    if skip is not None:
        skip_file(summary, name, *skip)
    return data


def try_decompress(blob: bytes) -> tuple[bytes | None, tuple | None]:
    """(data, None), or (None, (reason, detail)) for skip_file(): decompress() without a
    summary, for a worker process that reports back instead of logging."""
    try:
        data = gunzip(blob) if blob[:2] == b"\x1f\x8b" else blob
    except GZIP_ERRORS as exc:
        return None, ("bad-gzip", exc)
    if not data.strip():
        return None, ("empty-file", None)
    return data, None


def decode(name: str, blob: bytes, summary: Summary, parse: Callable[[bytes], object]):
    """Decompress and parse a whole file; None if either fails."""
    data = decompress(name, blob, summary)
    return None if data is None else parse_file(name, data, summary, parse)


def parse_file(name: str, data: bytes, summary: Summary, parse: Callable[[bytes], object]):
    document, skip = try_parse(data, parse)
    if skip is not None:
        skip_file(summary, name, *skip)
    return document


def try_parse(data: bytes, parse: Callable[[bytes], object]) -> tuple[object, tuple | None]:
    """(document, None), or (None, (reason, detail)) for skip_file()."""
    try:
        return parse(data), None
    except ValueError as exc:  # JSONDecodeError, orjson.JSONDecodeError, UnicodeDecodeError
        return None, ("not-json", str(exc)[:120])
    except RecursionError:  # the stdlib parser on arrays or objects nested too deeply
        return None, ("not-json", "nested too deeply")


# ---- worker processes ------------------------------------------------------------------------


def worker_count() -> int:
    """INGEST_WORKERS, else the CPUs this process may run on (the Lambda gets 2 at 3008 MB)."""
    value = os.environ.get("INGEST_WORKERS", "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            LOG.warning("INGEST_WORKERS=%r is not a number: one worker per CPU", value)
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class WorkerPool:
    """An ordered pool of forked worker processes, fed through pipes, each calling
    `work(name, *args)` for the jobs it is sent and answering with what that returns (or the
    traceback of what it raised). It uses only
    multiprocessing.Process and Pipe, which work in AWS Lambda (Pool, Queue and
    ProcessPoolExecutor need /dev/shm, which Lambda lacks). Job k goes to worker k mod n and
    results are read back in the same order, so the output is the sequential run's. A worker
    is sent a job only once it has returned its previous one (it is then waiting in recv):
    memory stays at n jobs (files) in flight, and neither side can block the other on a full pipe,
    whatever the sizes. (A reader thread in the worker, to queue a second file ahead, was
    slower: it has to win the GIL from the busy worker for every 64 KiB of a file, and the
    parent is stuck sending meanwhile.)"""

    DEPTH = 1

    def __init__(self, procs: list, jobs: list, results: list) -> None:
        self._procs, self._jobs, self._results = procs, jobs, results
        self._sent = 0
        self._inflight: deque = deque()  # (worker, name) in file order

    @classmethod
    def start(cls, n: int, work: Callable[..., object]) -> WorkerPool | None:
        """n started workers, or None (the caller goes sequential) if they cannot start."""
        import multiprocessing

        procs: list = []
        try:
            if "fork" not in multiprocessing.get_all_start_methods():
                return None
            ctx = multiprocessing.get_context("fork")
            jobs, results = [], []
            for _ in range(n):
                job_r, job_w = ctx.Pipe(duplex=False)
                res_r, res_w = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_worker_main, args=(job_r, res_w, work))
                proc.daemon = True
                proc.start()
                procs.append(proc)
                job_r.close()
                res_w.close()
                jobs.append(job_w)
                results.append(res_r)
        except Exception as exc:  # no fork, no pipes, no processes: run in this one
            LOG.warning("ingest workers did not start (%s): reading files sequentially", exc)
            for proc in procs:
                proc.terminate()
                proc.join()
            return None
        return cls(procs, jobs, results)

    def full(self) -> bool:
        return len(self._inflight) >= self.DEPTH * len(self._procs)

    def pending(self) -> bool:
        return bool(self._inflight)

    def submit(self, name: str, *args: object) -> None:
        worker = self._sent % len(self._procs)
        self._jobs[worker].send((name, *args))
        self._inflight.append((worker, name))
        self._sent += 1

    def next_result(self) -> tuple[str, object]:
        worker, name = self._inflight.popleft()
        try:
            result = self._results[worker].recv()
        except EOFError:
            raise RuntimeError(f"ingest worker {worker} died reading {name}") from None
        if result[0] == "error":
            raise RuntimeError(f"ingest worker failed on {name}:\n{result[1]}")
        return name, result[1]

    def close(self) -> None:
        for conn in self._jobs:
            with contextlib.suppress(OSError):  # a worker that has already gone
                conn.send(None)
        for proc in self._procs:
            if self._inflight:  # stopped early (an error): don't wait for unread results
                proc.terminate()
            proc.join(timeout=5)
            if proc.is_alive():  # pragma: no cover - a worker that ignores its stop
                proc.terminate()
                proc.join()
        for conn in self._jobs + self._results:
            conn.close()


def _worker_main(jobs, results, work: Callable[..., object]) -> None:
    """A worker: one job at a time, answered in order, until told to stop (None)."""
    import signal

    # The parent handles Ctrl-C and stops its workers with SIGTERM: a handler it installed
    # (the CLI's, which cleans up its output) must not keep a worker alive.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    reuse_heap()  # file after file of the same size: keep the buffers' pages
    while True:
        try:
            job = jobs.recv()
        except EOFError:  # the parent has gone
            return
        if job is None:
            return
        try:
            result = ("ok", work(*job))
        except BaseException:
            result = ("error", traceback.format_exc())
        try:
            results.send(result)
        except OSError:  # the parent has gone
            return


# ---- writing the output ----------------------------------------------------------------------


class CsvTuples(Sequence):
    """Tuples held as the `principal,ip` CSV lines they are written as: what a CloudTrail
    worker process sends back (one bytes object crosses a pipe far faster than a list of
    tuples) and TupleOutput writes as it is. Reads like the list of tuples it stands for."""

    __slots__ = ("csv", "_count", "_tuples")

    def __init__(self, csv: bytes, count: int) -> None:
        self.csv = csv
        self._count = count
        self._tuples: list | None = None

    def _list(self) -> list[tuple[str, str]]:
        if self._tuples is None:  # a principal holds no ',' (principal_of): split is exact
            self._tuples = [tuple(line.split(",", 1)) for line in self.csv.decode().splitlines()]
        return self._tuples

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index):
        return self._list()[index]

    def __iter__(self):
        return iter(self._list())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, tuple, CsvTuples)):
            return self._list() == list(other)
        return NotImplemented

    __hash__ = None

    def __repr__(self) -> str:
        shown = ", ".join(map(repr, self._list()[:3]))
        more = f", ... {len(self) - 3} more" if len(self) > 3 else ""
        return f"CsvTuples([{shown}{more}])"


class TupleOutput:
    """Tuples spooled to a temporary file, published in one step (upload or rename) at the end."""

    def __init__(self, destination: str, skipped: Counter | None = None) -> None:
        self.destination = destination
        self.count = 0
        self.skipped = skipped  # where tuples that break the CSV rule are counted
        if destination.startswith("s3://"):
            split_s3_uri(destination)
            directory = None  # /tmp in Lambda
        else:
            directory = str(Path(destination).resolve().parent)
            Path(directory).mkdir(parents=True, exist_ok=True)
        fd, self._path = _spool_file(directory)
        self._file = os.fdopen(fd, "wb")

    def write(self, tuples: Sequence[tuple[str, str]]) -> None:
        if not tuples:
            return
        if isinstance(tuples, CsvTuples):  # lines already checked by tuple_line()
            self._file.write(tuples.csv)
            self.count += len(tuples)
            return
        lines = [tuple_line(*pair) for pair in tuples]
        written = [line for line in lines if line is not None]
        if len(written) < len(lines) and self.skipped is not None:
            self.skipped[UNWRITABLE] += len(lines) - len(written)
        self._file.write(b"".join(written))
        self.count += len(written)

    def publish(self) -> str | None:
        """Move the file into place; with no tuples nothing is written (and None returned)."""
        self._file.close()
        if self.count == 0:
            os.unlink(self._path)
            return None
        if self.destination.startswith("s3://"):
            bucket, key = split_s3_uri(self.destination)
            try:
                s3_client().upload_file(
                    self._path, bucket, key, ExtraArgs={"ContentType": "text/csv"}
                )
            finally:
                os.unlink(self._path)
                SPOOLS.discard(self._path)
        else:
            os.replace(self._path, self.destination)
            SPOOLS.discard(self._path)
        return self.destination

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        if os.path.exists(self._path):
            os.unlink(self._path)
        SPOOLS.discard(self._path)


# Spool files not yet published or discarded. An interrupt can land where no `with` block
# covers it yet (between creating the file and entering the block): the CLI removes these then.
SPOOLS: set[str] = set()


def _spool_file(directory: str | None) -> tuple[int, str]:
    """A new spool file, recorded in SPOOLS before a Ctrl-C or SIGTERM can be handled (they
    are held back for the two calls, in the main thread, where Python handles signals)."""
    import signal
    import threading

    held = {signal.SIGINT, signal.SIGTERM}
    hold = threading.current_thread() is threading.main_thread()
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, held) if hold else None
    try:
        fd, path = tempfile.mkstemp(prefix=".tuples-", suffix=".csv.part", dir=directory)
        SPOOLS.add(path)
    finally:
        if mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    return fd, path


def discard_spools() -> None:
    """Remove every spool file this process still has (after an interrupt)."""
    for path in list(SPOOLS):
        with contextlib.suppress(OSError):
            os.unlink(path)
        SPOOLS.discard(path)


class Run:
    """One handler invocation: its configuration, summary and output. Used as a context
    manager: the output is published when the block ends normally and discarded when it
    fails, so a failed run leaves nothing behind."""

    def __init__(
        self,
        event: object,
        *,
        default_key: str,
        print_limit: int,
        unit: str = "records",
        need_input: bool = True,
    ) -> None:
        self.config = config_from(event, default_key=default_key, need_input=need_input)
        limit = event.get("print_limit", print_limit) if isinstance(event, dict) else print_limit
        self.print_limit = limit if type(limit) is int and limit > 0 else 0
        self.unit = unit
        _printable_stdout()
        self.summary = Summary()
        self.output: TupleOutput  # created on entering the run's `with` block

    def left_to_print(self) -> int:
        """How many more records to print: the first print_limit of the run are."""
        return max(0, self.print_limit - self.summary.records)

    def __enter__(self) -> Run:
        # Created here, not in __init__: an interrupt between the two would leave its spool
        # file behind, outside the block that removes it.
        self.output = TupleOutput(self.config.output, self.summary.skipped)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            self.output.discard()
            return False
        try:
            self.summary.tuples_written = self.output.count
            self.summary.output = self.output.publish()
        except BaseException:
            self.output.discard()
            raise
        return False

    def result(self) -> dict:
        """The summary as the handler returns it, after saying what was left unprinted."""
        summary = self.summary
        if self.print_limit and summary.records > self.print_limit:
            print(f"... and {summary.records - self.print_limit} more {self.unit} (not printed)")
        if summary.output is None:
            LOG.warning("no tuples written: exercise step not done yet, or no usable input")
        result = summary.as_dict()
        LOG.info("ingest done: %s", result)
        return result


def top_level_key_repeated(data: bytes, key: str) -> bool:
    """Whether the JSON object in `data` has `key` more than once at its top level. A parser
    keeps only the last one and drops the rest without a word; a log like that is refused.
    Parsed again (keeping every key) only when the text could hold a second one: the key twice
    as an object key, spelled plainly or with \\u escapes."""
    plainly_once = data.count(json.dumps(key).encode()) < 2
    escapes = b"\\" in data and b"\\u" in data  # memchr first: most logs hold no backslash
    if plainly_once and (not escapes or len(spelled_key(key).findall(data)) < 2):
        return False
    try:
        pairs = json.loads(data, object_pairs_hook=lambda pairs: pairs)
    except (ValueError, RecursionError):
        return False
    return isinstance(pairs, list) and sum(1 for k, _ in pairs if k == key) > 1


@functools.cache
def spelled_key(key: str) -> re.Pattern:
    """An object key that reads `key` once decoded: each character as itself or as \\uXXXX."""
    spellings = (
        re.escape(c) + r"|\\u" + "".join(f"[{h.lower()}{h.upper()}]" for h in f"{ord(c):04x}")
        for c in key
    )
    return re.compile(('"' + "".join(f"(?:{s})" for s in spellings) + r'"\s*:').encode())


def _printable_stdout() -> None:
    """Print what a record holds whatever it holds: a lone surrogate from a JSON escape
    ("\\ud800") would otherwise stop a print() of it, and the run, with UnicodeEncodeError."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None and getattr(sys.stdout, "errors", None) == "strict":
        with contextlib.suppress(ValueError, OSError):
            reconfigure(errors="backslashreplace")
