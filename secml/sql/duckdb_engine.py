"""`secml tuples cloudtrail --engine duckdb`: the Athena tuple query, run by DuckDB on a laptop.

DuckDB gets the same query text Athena runs (translated by sqlglot, see query.py) over a view
named `cloudtrail` with the columns of Athena's CloudTrail table. That view is this engine's
counterpart of the Glue table: it reads the log files and extracts the fields with JSON's own
types (a field that is not a JSON string is NULL, as the Lambda ignores it), and takes the
partition columns from the path, as partition projection does.

Files follow the Lambda's file rules (lambda_src/ingest_common): names that are never log data
and empty files are skipped by name and size before reading, and a file is all or nothing. DuckDB
reads all files in one query (see TYPED and GENERIC); if that fails on some file, each file is
tried alone and the ones that fail are skipped and counted ("unreadable"), then the rest are
read together.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from lambda_src import ingest_common
from lambda_src.athena_tuples.params import query_parameters
from secml.sql.query import tuple_query

# Partition columns from the S3 layout CloudTrail writes, organisation trails included:
# AWSLogs/[o-org/]<account>/CloudTrail/<region>/<yyyy>/<mm>/<dd>/<file>
_LAYOUT = (
    r"AWSLogs/(?:o-[a-z0-9]+/)?([0-9]{12})/CloudTrail/([a-z0-9-]+)/"
    r"([0-9]{4}/[0-9]{2}/[0-9]{2})/[^/]*$"
)
_MAX_OBJECT = 1 << 30  # a log file is one JSON document; DuckDB's default limit is 16 MB
_FETCH_ROWS = 100_000


@dataclass
class Result:
    files_read: int = 0
    tuples_written: int = 0
    files_skipped: Counter = field(default_factory=Counter)
    output: str | None = None

    def as_dict(self) -> dict:
        return {
            "engine": "duckdb",
            "files_read": self.files_read,
            "tuples_written": self.tuples_written,
            "files_skipped": dict(sorted(self.files_skipped.items())),
            "output": self.output,
        }


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# How a file's records are read. TYPED: the three fields as raw JSON values (DuckDB parses a
# file once, about twice as fast); it fails on a record that is not a JSON object, so a run
# that fails so is read again GENERIC: each record as JSON text, fields extracted from it.
TYPED = "STRUCT(eventType JSON, userIdentity JSON, sourceIPAddress JSON)[]"
GENERIC = "JSON[]"


def _read_json(files: list[str], compression: str, records: str = GENERIC) -> str:
    listed = ", ".join(_sql_string(f) for f in files)
    return (
        f"SELECT filename, Records FROM read_json([{listed}], format = 'unstructured', "
        f"records = true, columns = {{'Records': '{records}'}}, filename = true, "
        f"compression = '{compression}', maximum_object_size = {_MAX_OBJECT})"
    )


def _string(value: str, path: str = "$") -> str:
    """The JSON value's string, or NULL when it is not a JSON string (the Lambda's rule)."""
    return f"CASE WHEN json_type({value}, '{path}') = 'VARCHAR' THEN {value} ->> '{path}' END"


def view_sql(gzipped: list[str], plain: list[str], records: str = TYPED) -> str:
    """The `cloudtrail` view over these files (gzip decided by content, as the Lambda does)."""
    reads = [
        _read_json(files, c, records) for files, c in ((gzipped, "gzip"), (plain, "none")) if files
    ]
    if not reads:
        reads = [f"SELECT NULL::VARCHAR AS filename, NULL::{records} AS Records WHERE false"]
    if records == TYPED:
        fields = "SELECT filename, r.eventType AS e, r.userIdentity AS u, r.sourceIPAddress AS s"
        fields += " FROM records"
        principal = _string("u", "$.principalId")
    else:  # one parse of each record for all its fields
        paths = ["$.eventType", "$.userIdentity.principalId", "$.sourceIPAddress"]
        fields = (
            "SELECT filename, v[1] AS e, v[2] AS u, v[3] AS s FROM "
            f"(SELECT filename, json_extract(r, {paths!r}) AS v FROM records)"
        )
        principal = _string("u")
    return f"""
CREATE OR REPLACE TEMP VIEW cloudtrail AS
WITH documents AS (
    {" UNION ALL ".join(reads)}
),
records AS (SELECT filename, unnest(Records) AS r FROM documents),
fields AS ({fields})
SELECT
    {_string("e")} AS eventtype,
    struct_pack(principalid := {principal}) AS useridentity,
    {_string("s")} AS sourceipaddress,
    nullif(regexp_extract(filename, '{_LAYOUT}', 1), '') AS account,
    nullif(regexp_extract(filename, '{_LAYOUT}', 2), '') AS region,
    nullif(regexp_extract(filename, '{_LAYOUT}', 3), '') AS day
FROM fields
"""


def list_files(sources: list[str], result: Result, scratch: Path) -> list[str]:
    """Local paths of the data files under the sources, by the Lambda's name and size rules.
    s3:// sources are copied into `scratch` first (through boto3, as the Lambda reads them),
    under their keys, so the partition columns come from the same path."""
    files: list[str] = []
    for source in sources:
        if source.startswith("s3://"):
            summary = ingest_common.Summary()
            for name, blob in ingest_common.iter_blobs([source], summary):
                bucket, key = ingest_common.split_s3_uri(name)
                path = scratch / bucket / key
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(blob)
                files.append(str(path))
            result.files_skipped.update(summary.files_skipped)
            continue
        root = Path(source)
        if root.is_dir():
            paths = sorted(p for p in root.rglob("*") if p.is_file())
        elif root.is_file():
            paths = [root]
        else:
            raise FileNotFoundError(f"no such file or folder: {root}")
        for p in paths:
            rel = p.relative_to(root).as_posix() if root.is_dir() else p.name
            reason = ingest_common.skip_reason_for_key(rel)
            if reason is None and not _head(p).strip():
                reason = "empty-file"  # (a whitespace-only file longer than this: unreadable)
            if reason:
                result.files_skipped[reason] += 1
                continue
            files.append(str(p.resolve()))
    return files


def _head(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(4096)


def _is_gzip(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _readable(con: duckdb.DuckDBPyConnection, path: str, gzipped: bool) -> bool:
    try:
        con.execute(
            f"SELECT count(*) FROM ({_read_json([path], 'gzip' if gzipped else 'none')})"
        ).fetchall()
    except duckdb.Error:
        return False
    return True


def run(
    sources: list[str],
    output: str,
    *,
    ipv4_only: bool = False,
    first_day: str | None = None,
    last_day: str | None = None,
    accounts: str | None = None,
    regions: str | None = None,
    threads: int | None = None,
) -> Result:
    """Tuples of the CloudTrail logs under `sources` into `output` (a file or s3:// key),
    published only when complete (ingest_common.TupleOutput). Raises ValueError for a bad
    filter, FileNotFoundError for a missing source."""
    parameters = query_parameters(
        first_day=first_day,
        last_day=last_day,
        accounts=accounts,
        regions=regions,
        ipv4_only=ipv4_only,
    )
    result = Result()
    scratch = Path(tempfile.mkdtemp(prefix="secml-duckdb-"))
    con = duckdb.connect(config={"threads": threads} if threads else {})
    out = ingest_common.TupleOutput(output)
    try:
        files = list_files(sources, result, scratch)
        kinds = {f: _is_gzip(f) for f in files}
        query = tuple_query("duckdb")

        def execute(records: str) -> tuple[duckdb.DuckDBPyConnection, list]:
            gz = [f for f in files if kinds[f]]
            con.execute(view_sql(gz, [f for f in files if not kinds[f]], records))
            cursor = con.execute(query, parameters)
            return cursor, cursor.fetchmany(_FETCH_ROWS)

        try:
            cursor, rows = execute(TYPED)
        except duckdb.Error:  # a record that is not an object, or an unreadable file
            try:
                cursor, rows = execute(GENERIC)
            except duckdb.Error:  # some file is unreadable: find it (them), read the rest
                good = [f for f in files if _readable(con, f, kinds[f])]
                result.files_skipped["unreadable"] += len(files) - len(good)
                files = good
                cursor, rows = execute(GENERIC)
        while rows:
            out.write(rows)
            rows = cursor.fetchmany(_FETCH_ROWS)
        result.files_read = len(files)
        result.tuples_written = out.count
        result.output = out.publish()
    except BaseException:
        out.discard()
        raise
    finally:
        con.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return result
