"""The SQL path (DuckDB) against the Lambda code path, and what Athena would charge.

    python benchmarks/athena_duckdb.py [--files 20 --records 20000] [--rounds N]
                                       [--large DIR [--large-days D]]

Runs, each in its own process so that peak memory is its own:

- lambda: this project's CloudTrail handler as the CLI runs it (orjson, one worker process per
  CPU, as `secml tuples cloudtrail` does);
- duckdb: `secml tuples cloudtrail --engine duckdb`'s engine (secml/sql/duckdb_engine.py), the
  Athena query translated by sqlglot, with DuckDB's default threads (one per CPU).

on N files of M records drawn from the workshop preset (default 400k records in 20 files), and,
with --large DIR, on a dataset folder made by `python -m secml generate --preset large --out DIR`
(--large-days D: only its first D days of logs, linked into a folder of the same layout, for a
shared machine where the whole preset takes too long).
Both engines' tuples are compared as multisets before any figure is printed.

Records/s is records in the files / wall seconds (best of --rounds). Peak memory is the
process's VmHWM; for the Lambda path its largest worker's too. The Athena estimate is the
bytes Athena would scan (the gzipped log files: it reads them whole) x $5 per TB, the list
price of Athena SQL queries (https://aws.amazon.com/athena/pricing/), with its 10 MB minimum
per query. It is an estimate: nothing here ran in AWS.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

PRICE_PER_TB = 5.0
MIN_BYTES = 10 * 1000**2


def athena_cost(scanned_bytes: int) -> float:
    return max(scanned_bytes, MIN_BYTES) / 1e12 * PRICE_PER_TB


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(engine: str, folder: Path, out: Path) -> None:
    if engine == "lambda":
        from lambda_src.cloudtrail_ingest import index

        t0 = time.perf_counter()
        event = {"sources": [str(folder)], "output": str(out), "print_limit": 0}
        res = index.handler(event, None)
        seconds = time.perf_counter() - t0
        summary = {"records": res["records"], "tuples": res["tuples_written"]}
    else:
        from secml.sql import duckdb_engine

        t0 = time.perf_counter()
        res = duckdb_engine.run([str(folder)], str(out))
        seconds = time.perf_counter() - t0
        summary = {"records": None, "tuples": res.tuples_written}
    summary["seconds"] = seconds
    summary["peak_rss_mb"] = peak_rss_mb()
    summary["worker_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps(summary))


def run_child(engine: str, folder: Path, out: Path) -> dict:
    cmd = [sys.executable, __file__, "--worker", engine, str(folder), str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def log_bytes(folder: Path) -> int:
    return sum(
        p.stat().st_size
        for p in folder.rglob("*")
        if p.is_file() and "CloudTrail-Digest" not in p.parts and p.name.endswith(".json.gz")
    )


def lines(path: Path) -> collections.Counter:
    return collections.Counter(path.read_bytes().split(b"\n")[:-1])


def first_days(cloudtrail: Path, days: int, into: Path) -> Path:
    """The log files of the first `days` day folders (yyyy/mm/dd), linked under `into`."""
    files = [p for p in sorted(cloudtrail.rglob("*.json.gz")) if "CloudTrail-Digest" not in p.parts]
    keep = sorted({p.parent.relative_to(cloudtrail).parts[-3:] for p in files})[:days]
    for p in files:
        if p.parent.relative_to(cloudtrail).parts[-3:] in keep:
            link = into / p.relative_to(cloudtrail)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(p)
    return into


def compare(name: str, folder: Path, rounds: int, tmp: Path) -> None:
    best: dict[str, dict] = {}
    for _ in range(rounds):  # engines take turns: other work on the machine hits both
        for engine in ("lambda", "duckdb"):
            res = run_child(engine, folder, tmp / f"{engine}.csv")
            if engine not in best or res["seconds"] < best[engine]["seconds"]:
                best[engine] = res
    if lines(tmp / "lambda.csv") != lines(tmp / "duckdb.csv"):
        raise SystemExit(f"{name}: the engines' tuples differ")
    records = best["lambda"]["records"]
    scanned = log_bytes(folder)
    print(f"\n{name}: {records:,} records, {best['lambda']['tuples']:,} tuples (equal multisets)")
    print(f"{'engine':<8} {'seconds':>8} {'records/s':>11} {'peak MB':>8} {'worker MB':>10}")
    for engine, res in best.items():
        print(
            f"{engine:<8} {res['seconds']:8.2f} {records / res['seconds']:11,.0f} "
            f"{res['peak_rss_mb']:8.0f} {res['worker_rss_mb']:10.0f}"
        )
    ratio = best["lambda"]["seconds"] / best["duckdb"]["seconds"]
    print(f"duckdb / lambda speed: {ratio:.2f}x")
    print(
        f"Athena estimate: {scanned / 1e9:.3f} GB scanned (gzipped logs) x ${PRICE_PER_TB:.0f}/TB "
        f"= ${athena_cost(scanned):.4f} per run (10 MB minimum per query)"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=20, help="0: skip this part")
    ap.add_argument("--records", type=int, default=20_000, help="records per file")
    ap.add_argument("--large", type=Path, help="a `generate --preset large` dataset folder")
    ap.add_argument("--large-days", type=int, help="only the large preset's first N days")
    ap.add_argument("--rounds", type=int, default=2, help="runs per engine (best is kept)")
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker[0], Path(args.worker[1]), Path(args.worker[2]))
        return 0
    from ingest import make_files, record_pool  # benchmarks/ingest.py: the same record pool

    print(f"cpu count {os.cpu_count()}, affinity {len(os.sched_getaffinity(0))}")
    tmp = Path(tempfile.mkdtemp(prefix="secml-athena-bench-"))
    try:
        folder = tmp / "files"
        if args.files:
            make_files(folder, args.files, args.records, record_pool())
            raw = sum(len(gzip.decompress(f.read_bytes())) for f in folder.iterdir())
            print(f"{args.files} files x {args.records:,} records ({raw / 1e6:.0f} MB of JSON)")
        if args.files:
            compare(f"{args.files} files", folder, args.rounds, tmp)
        if args.large:
            large, name = args.large / "cloudtrail", f"large preset ({args.large})"
            if args.large_days:
                large = first_days(large, args.large_days, tmp / "large")
                name += f", its first {args.large_days} days"
            compare(name, large, args.rounds, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
