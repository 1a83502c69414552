"""`secml tuples cloudtrail --engine duckdb`: the CLI edge of duckdb_engine (errors -> one line)."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from secml.errors import SecmlError


def run_duckdb(args: argparse.Namespace) -> int:
    import duckdb
    from botocore.exceptions import BotoCoreError, ClientError

    from secml.sql import duckdb_engine

    # Sources and --out were checked by secml.tuples.run, as for the Lambda engine.
    logging.getLogger("secml.ingest").setLevel(logging.INFO if args.verbose else logging.ERROR)
    try:
        result = duckdb_engine.run(list(args.src), str(args.out), ipv4_only=args.ipv4_only)
    except (ClientError, BotoCoreError) as exc:
        raise SecmlError(f"reading {', '.join(args.src)}: {exc}") from None
    except (FileNotFoundError, ValueError, duckdb.Error) as exc:
        raise SecmlError(str(exc).splitlines()[0]) from None
    summary = result.as_dict()
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(
        f"{result.tuples_written:,} tuples from {result.files_read:,} files (duckdb) -> "
        f"{result.output or '(nothing written)'}"
    )
    if result.files_skipped:
        skipped = ", ".join(f"{k} {v:,}" for k, v in summary["files_skipped"].items())
        print(f"skipped files: {skipped}", file=sys.stderr)
    return 0
