"""`python -m secml tuples cloudtrail|guardduty SRC... --out FILE`: the ingest Lambdas, locally.

Runs the very handlers deployed as Lambdas (imported from lambda_src), with the sources and the
output passed in the event instead of the environment.
"""

from __future__ import annotations

import argparse
import json
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
        k.add_argument("--out", required=True, type=Path, help="CSV to write (no header)")
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

    if getattr(args, "engine", "lambda") == "duckdb":
        from secml.sql.cli import run_duckdb

        return run_duckdb(args)
    if args.kind == "cloudtrail":
        from lambda_src.cloudtrail_ingest import index
    else:
        from lambda_src.guardduty_ingest import index

    for src in args.src:
        if not src.startswith("s3://") and not Path(src).exists():
            raise SecmlError(f"no such file or folder: {src}")
        if src.startswith("s3://") and not src[5:].split("/", 1)[0]:
            raise SecmlError(f"not an S3 URI (s3://bucket/prefix): {src}")
    if args.out.is_dir():
        raise SecmlError(f"--out {args.out} is a folder; give a file name")
    logging.getLogger("secml.ingest").setLevel(logging.INFO if args.verbose else logging.ERROR)
    event = {
        "sources": list(args.src),
        "output": str(args.out),
        "ipv4_only": args.ipv4_only,
        "include_samples": getattr(args, "include_samples", False),
        "print_limit": 0,
    }
    try:
        result = index.handler(event, None)
    except (ClientError, BotoCoreError) as exc:
        raise SecmlError(f"reading {', '.join(args.src)}: {exc}") from None
    except (FileNotFoundError, ValueError) as exc:
        raise SecmlError(str(exc)) from None
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
