"""The demo's check that the SQL path agrees with the Lambda: same tuples, as a multiset."""

from __future__ import annotations

import csv
import logging
import tempfile
from collections import Counter
from pathlib import Path

from secml.errors import SecmlError


def duckdb_matches_lambda(lambda_env: dict[str, str], lambda_pairs: list) -> str:
    """Run the DuckDB engine on what CloudTrailIngest read (its INPUT_BUCKET/INPUT_PREFIX and
    IPV4_ONLY), compare with the tuples it wrote; a line for the report, or SecmlError."""
    from secml.sql import duckdb_engine

    source = f"s3://{lambda_env['INPUT_BUCKET']}/{lambda_env.get('INPUT_PREFIX', '')}"
    ipv4_only = lambda_env.get("IPV4_ONLY", "false").lower() == "true"
    with tempfile.TemporaryDirectory(prefix="secml-duckdb-demo-") as tmp:
        out = Path(tmp) / "tuples.csv"
        # The CloudTrailIngest step has already reported each skipped file; a line per digest
        # file again would bury the demo's step lines.
        ingest_log = logging.getLogger("secml.ingest")
        saved_level = ingest_log.level
        ingest_log.setLevel(logging.ERROR)
        try:
            result = duckdb_engine.run([source], str(out), ipv4_only=ipv4_only)
        finally:
            ingest_log.setLevel(saved_level)
        with open(out, newline="") as f:  # read as the demo reads the Lambda's (read_pairs)
            pairs = [(row[0], row[1]) for row in csv.reader(f) if len(row) >= 2]
    got, expected = Counter(pairs), Counter(lambda_pairs)
    if got != expected:
        raise SecmlError(
            f"the SQL tuples differ from CloudTrailIngest's: {sum((got - expected).values())} "
            f"extra, {sum((expected - got).values())} missing"
        )
    return f"{result.tuples_written:,} tuples from {result.files_read} files, equal to the Lambda's"
