"""The one SQL definition of a CloudTrail tuple, in each engine's dialect.

cloudtrail_tuples.sql is written in Athena's dialect (Trino); DuckDB gets sqlglot's
translation of that same text, so the two can never drift apart by hand. The Athena text is
what the stack deploys (stacks/athena.py, as the workgroup's named query) and what the runner
function wraps in UNLOAD.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import sqlglot

SOURCE = Path(__file__).with_name("cloudtrail_tuples.sql")
SOURCE_DIALECT = "trino"  # Athena engine version 3 is Trino
DIALECTS = {"athena": "trino", "duckdb": "duckdb"}


def source_text() -> str:
    return SOURCE.read_text(encoding="utf-8")


@cache
def tuple_query(engine: str) -> str:
    """The tuple query for `engine` ('athena' or 'duckdb'), from the one source text."""
    try:
        dialect = DIALECTS[engine]
    except KeyError:
        raise ValueError(f"unknown engine {engine!r}: one of {', '.join(DIALECTS)}") from None
    (text,) = sqlglot.transpile(
        source_text(), read=SOURCE_DIALECT, write=dialect, pretty=True, comments=False
    )
    return text
