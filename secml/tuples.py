"""`python -m secml tuples cloudtrail|guardduty SRC... --out FILE`: the ingest Lambdas, locally.

Runs the very handlers deployed as Lambdas (imported from lambda_src), with the sources and the
output passed in the event instead of the environment.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from secml.errors import SecmlError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "tuples",
        help="CloudTrail logs or GuardDuty findings to principal,ip CSV (the ingest Lambdas' code)",
    )
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    for kind, help_text in (
        ("cloudtrail", "CloudTrail log files (.json.gz or .json) to training tuples"),
        ("guardduty", "GuardDuty findings (array, JSON Lines export, events) to scoring tuples"),
    ):
        k = kinds.add_parser(kind, help=help_text, description=help_text)
        k.add_argument("src", nargs="+", metavar="SRC", help="file, folder or s3://bucket/prefix")
        k.add_argument(
            "--out", required=True, help="CSV to write (no header): a file or s3://bucket/key"
        )
        k.add_argument("--ipv4-only", action="store_true", help="skip IPv6 (SageMaker's built-in)")
        if kind == "guardduty":
            k.add_argument("--include-samples", action="store_true", help="keep sample findings")
        else:  # the same tuples from the Athena query, run locally (secml/sql)
            k.add_argument("--engine", choices=["lambda", "duckdb"], default="lambda")
        k.add_argument("--verbose", action="store_true", help="log every skipped file")
        k.add_argument("--json", action="store_true", help="print the summary as JSON")
        k.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from botocore.exceptions import BotoCoreError, ClientError

    from lambda_src import ingest_common

    check_sources(args.src)
    check_output(args.out, args.src)
    if getattr(args, "engine", "lambda") == "duckdb":
        from secml.sql.cli import run_duckdb

        return run_duckdb(args)
    if args.kind == "cloudtrail":
        from lambda_src.cloudtrail_ingest import index
    else:
        from lambda_src.guardduty_ingest import index

    logging.getLogger("secml.ingest").setLevel(logging.INFO if args.verbose else logging.ERROR)
    event = {
        "sources": list(args.src),
        "output": args.out,
        "ipv4_only": args.ipv4_only,
        "include_samples": getattr(args, "include_samples", False),
        "print_limit": 0,
    }
    previous = signal.signal(signal.SIGTERM, _interrupted)  # clean up as on Ctrl-C
    progress = Progress(args.src) if _is_terminal() else None
    try:
        result = index.handler(event, None)
    except (ClientError, BotoCoreError) as exc:
        raise SecmlError(f"reading {', '.join(args.src)}: {exc}") from None
    except (FileNotFoundError, ValueError) as exc:
        raise SecmlError(str(exc)) from None
    except OSError as exc:  # writing the output: no space left, no permission
        raise SecmlError(f"{exc.filename or args.out}: {exc.strerror or exc}") from None
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM, maybe before the handler's cleanup covered it
        ingest_common.discard_spools()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        if progress is not None:
            progress.close()
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    unit = "findings" if args.kind == "guardduty" else "records"
    print(
        f"{result['tuples_written']:,} tuples from {result['records']:,} {unit} in "
        f"{result['files_read']:,} files -> {result['output'] or '(nothing written)'}"
    )
    for label, counts in (
        ("skipped " + unit, result["skipped"]),
        ("skipped files", result["files_skipped"]),
    ):
        if counts:
            print(
                f"{label}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()), file=sys.stderr
            )
    return 0


def _interrupted(signum, frame) -> None:
    raise KeyboardInterrupt  # the handler then removes its partial output, as on Ctrl-C


def check_sources(sources: list[str]) -> None:
    """Each source exists and can be read, before any of them is: one clear line if not."""
    for src in sources:
        if src.startswith("s3://"):
            if not src[5:].split("/", 1)[0]:
                raise SecmlError(f"not an S3 URI (s3://bucket/prefix): {src}")
            continue
        path = Path(src)
        try:
            if path.is_dir():
                os.scandir(path).close()
            else:
                path.open("rb").close()
        except FileNotFoundError:
            raise SecmlError(f"no such file or folder: {src}") from None
        except OSError as exc:
            raise SecmlError(f"cannot read {src}: {exc.strerror or exc}") from None


def check_output(out: str, sources: list[str]) -> None:
    """--out names a place the tuples can go that is none of the inputs, before any work."""
    if out.startswith("s3://"):
        _check_s3_output(out, sources)
        return
    path = Path(out)
    if path.is_dir():
        raise SecmlError(f"--out {out} is a folder; give a file name")
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise SecmlError(f"--out {out}: {parent} is not a folder")
            break
    try:
        out_stat = os.stat(path)  # follows a link: a link to an input is that input
    except OSError:
        return  # nothing there yet: no input to overwrite
    from lambda_src import ingest_common

    for src in sources:
        if src.startswith("s3://"):
            continue
        for file, _ in ingest_common.local_files(Path(src), ingest_common.Summary()):
            if os.path.samestat(out_stat, os.stat(file)):
                raise SecmlError(f"--out {out} is the input file {file}: it would be overwritten")


def _check_s3_output(out: str, sources: list[str]) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    from lambda_src import ingest_common

    bucket, _, key = out[len("s3://") :].partition("/")
    if not bucket or not key or key.endswith("/"):
        raise SecmlError(f"--out {out}: give an object, s3://bucket/key")
    s3 = ingest_common.s3_client()
    try:
        s3.head_bucket(Bucket=bucket)
    except (ClientError, BotoCoreError) as exc:
        raise SecmlError(f"--out {out}: cannot use bucket {bucket}: {exc}") from None
    for src in sources:
        src_bucket, _, prefix = src[len("s3://") :].partition("/")
        if src.startswith("s3://") and src_bucket == bucket and key.startswith(prefix):
            try:
                s3.head_object(Bucket=bucket, Key=key)
            except ClientError:
                continue  # not there yet: not an input
            raise SecmlError(f"--out {out} is one of the inputs under {src}: it would be replaced")


PROGRESS_AFTER = 300  # files: a shorter run needs no bar


def _is_terminal() -> bool:
    return sys.stderr.isatty() and sys.stdout.isatty()


class Progress:
    """A tqdm bar on stderr, counting the files read, shown once a run passes PROGRESS_AFTER
    files (only when both outputs are a terminal; the caller checks). Its total is known for
    local sources (one walk of their folders, stat only) and not for S3 prefixes."""

    def __init__(self, sources: list[str]) -> None:
        from lambda_src import ingest_common

        self._common = ingest_common
        self.total: int | None = None
        if not any(src.startswith("s3://") for src in sources):
            summary = ingest_common.Summary()
            self.total = sum(len(ingest_common.local_files(Path(src), summary)) for src in sources)
        self.count = 0
        self.bar = None
        ingest_common.on_file = self.tick

    def tick(self) -> None:
        self.count += 1
        if self.bar is not None:
            self.bar.update()
        elif self.count >= PROGRESS_AFTER:
            from tqdm import tqdm

            self.bar = tqdm(
                total=self.total, initial=self.count, unit="file", file=sys.stderr, leave=False
            )

    def close(self) -> None:
        self._common.on_file = None
        if self.bar is not None:
            self.bar.close()
