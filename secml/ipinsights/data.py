"""`entity,ip` pairs in: CSV files, DataFrames or lists of tuples; checked, with line numbers.

Every entry point (fit, predict, the CLI) goes through `load_pairs`, so a bad row is reported the
same way everywhere: the first offending line (or row) by number and why, plus how many more
there are; or, with ``skip_invalid``, skipped and counted.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lambda_src.ingest_common import tuple_field_ok
from secml.errors import SecmlError, short, utf8_text
from secml.ipinsights.addresses import Addresses, parse_addresses


@dataclass
class Pairs:
    """Checked pairs: entity strings, parsed addresses, and where each came from."""

    entities: np.ndarray  # object array of str
    ip_texts: np.ndarray  # object array of str, as given (stripped)
    addresses: Addresses
    line_numbers: np.ndarray  # 1-based line (file) or row (in-memory) number of each pair
    skipped: int = 0
    problems: list[str] = field(default_factory=list)  # the first few, for the log

    def __len__(self) -> int:
        return len(self.entities)


def entity_hashes(entities: np.ndarray) -> np.ndarray:
    """64-bit hash of each entity's UTF-8 bytes (blake2b): stable across runs and machines.

    Python's own ``hash`` is salted per process, so it cannot be used for a model that is saved
    and reloaded. Hashing is done once per distinct entity.
    """
    import pandas as pd

    codes, uniques = pd.factorize(np.asarray(entities, dtype=object))
    table = np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(str(u).encode("utf-8"), digest_size=8).digest(), "big")
            for u in uniques
        ),
        dtype=np.uint64,
        count=len(uniques),
    )
    return table[codes]


def _describe_source(source: Any) -> str:
    if isinstance(source, CsvBytes):
        return source.name
    if isinstance(source, str | os.PathLike):
        return str(source)
    return "input"


def _read_file(path: Path) -> bytes:
    from secml.ipinsights.scoring import open_csv  # one set of messages for an unreadable file

    with open_csv(path) as f:
        return f.read()


# What a tuple field may hold, the rule the tuple writers apply (lambda_src/ingest_common.py,
# ``tuple_field_ok``) and SageMaker's CSV reader assumes: printable text (str.isprintable(): no
# control characters, CR/LF included, no line or paragraph separators, lone surrogates or
# unassigned code points) without ',' or '"': the file is plain, unquoted CSV. A writer skips
# and counts such a tuple; this reader refuses it at its line, so the two agree.
FIELD_BLANKS = " \t"


def _field_problem(field: str, what: str) -> str | None:
    if tuple_field_ok(field):  # the writers' own rule: one definition of a tuple field
        return None
    if not field:
        return f"empty {what}"
    if not field.isprintable():
        bad = next(c for c in field if not c.isprintable())
        return f"{what} has a non-printable character (U+{ord(bad):04X})"
    if "," in field or '"' in field:
        return f"{what} has a ',' or '\"' (not allowed in a tuple)"
    return f"{what} has blanks at its ends"


def _split_line(line: str) -> list[str] | str:
    """One line's fields, or why it is not a tuple line. Lines are never joined, so a stray
    quote or a broken line costs that line only, reported at its own number."""
    if '"' in line:
        return "malformed CSV: a double quote (tuples are plain, unquoted CSV: principal,ip)"
    return line.split(",")


def _read_csv_rows(path, raw: bytes) -> tuple[list[str], list[str], np.ndarray, list]:
    """Split a headerless CSV into (entities, ips, line numbers, [(line, problem)])."""
    text = utf8_text(raw, path)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    entities: list[str] = []
    ips: list[str] = []
    numbers: list[int] = []
    problems: list[tuple[int, str]] = []
    # Without quotes or CRs, the C reader splits each line exactly as _split_line would (fast).
    plain = '"' not in text and "\r" not in text
    rows = csv.reader(lines) if plain else map(_split_line, lines)
    for number, row in enumerate(rows, start=1):
        if isinstance(row, str):
            problems.append((number, row))
        elif len(row) == 2:
            entities.append(row[0].strip(FIELD_BLANKS))
            ips.append(row[1].strip(FIELD_BLANKS).removesuffix("\r"))  # CRLF line ends
            numbers.append(number)
        elif not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line
        else:
            problems.append((number, f"expected 2 fields (entity,ip), got {len(row)}"))
    return entities, ips, np.asarray(numbers, dtype=np.int64), problems


def _read_file_rows(path, raw: bytes) -> tuple[Any, Any, np.ndarray, list]:
    """``_read_csv_rows``' answer for a file; a plain one (every line ``entity,ip`` in printable
    ASCII, as ``secml tuples`` writes) is split by Arrow's CSV reader, as ``secml score`` splits
    its plain blocks (``scoring._plain_rows``): 0.05 s instead of 0.45 s for 250,000 rows.
    Anything else goes through the per-line reader, with its line numbers and messages."""
    from secml.ipinsights.scoring import UTF8_BOM, _plain_rows

    body = raw[len(UTF8_BOM) :] if raw.startswith(UTF8_BOM) else raw
    rows = None
    if body:
        rows = _plain_rows(body if body.endswith(b"\n") else body + b"\n", 1)
    if rows is None:
        return _read_csv_rows(path, raw)
    entities = rows.entities.to_numpy(zero_copy_only=False)
    return entities, rows.ips.to_numpy(zero_copy_only=False), rows.numbers, []


def _rows_from_memory(source: Any) -> tuple[list[str], list[str], np.ndarray, list]:
    try:
        import pandas as pd

        if isinstance(source, pd.DataFrame):
            if source.shape[1] != 2:
                raise SecmlError(
                    f"expected a DataFrame with 2 columns (entity, ip), got {source.shape[1]}"
                )
            entities = source.iloc[:, 0].tolist()
            ips = source.iloc[:, 1].tolist()
        else:
            rows = list(source)
            if any(not isinstance(r, list | tuple) or len(r) != 2 for r in rows):
                bad = next(
                    i
                    for i, r in enumerate(rows, 1)
                    if not isinstance(r, list | tuple) or len(r) != 2
                )
                raise SecmlError(f"row {bad}: expected an (entity, ip) pair, got {rows[bad - 1]!r}")
            entities = [r[0] for r in rows]
            ips = [r[1] for r in rows]
    except TypeError:
        raise SecmlError(
            "expected a path to a CSV file, a DataFrame with 2 columns, or (entity, ip) pairs"
        ) from None
    entities = ["" if e is None else str(e).strip(FIELD_BLANKS) for e in entities]
    ips = [i.strip(FIELD_BLANKS) if isinstance(i, str) else "" for i in ips]
    return entities, ips, np.arange(1, len(entities) + 1, dtype=np.int64), []


class CsvBytes:
    """CSV content already in memory (stdin), with a name for messages."""

    def __init__(self, raw: bytes, name: str = "stdin"):
        self.raw = raw
        self.name = name


def load_pairs(source: Any, *, skip_invalid: bool = False, what: str = "input") -> Pairs:
    """Read and check pairs from a CSV path, CsvBytes, a DataFrame or (entity, ip) pairs."""
    is_file = isinstance(source, str | os.PathLike | CsvBytes)
    if isinstance(source, CsvBytes):
        entities, ips, numbers, problems = _read_csv_rows(source.name, source.raw)
        where = "line"
    elif is_file:
        entities, ips, numbers, problems = _read_file_rows(source, _read_file(Path(source)))
        where = "line"
    else:
        entities, ips, numbers, problems = _rows_from_memory(source)
        where = "row"
    label = _describe_source(source) if is_file else what
    ent = np.asarray(entities, dtype=object)
    ip_arr = np.asarray(ips, dtype=object)
    addresses, ok = parse_addresses(ip_arr)
    # checked once per distinct entity: there are far fewer entities than rows
    entity_problems = {e: p for e in set(entities) if (p := _field_problem(e, "entity"))}
    bad_entity = np.zeros(len(entities), dtype=bool)
    if entity_problems:
        bad_entity[[i for i, e in enumerate(entities) if e in entity_problems]] = True
    for i in np.flatnonzero(~ok | bad_entity):
        if bad_entity[i]:
            problems.append((int(numbers[i]), entity_problems[entities[i]]))
        else:
            bad = short(ip_arr[i])
            problems.append((int(numbers[i]), f"{bad} is not an IPv4 or IPv6 address"))
    keep = ok & ~bad_entity
    problems.sort()
    described = [f"{label} {where} {n}: {why}" for n, why in problems[:5]]
    if problems and not skip_invalid:
        more = f" ({len(problems) - 1} more invalid rows)" if len(problems) > 1 else ""
        hint = " (the input is headerless)" if problems[0][0] == 1 and is_file else ""
        raise SecmlError(f"{described[0]}{hint}{more}; use --skip-invalid to skip invalid rows")
    pairs = Pairs(
        ent[keep],
        ip_arr[keep],
        addresses.take(keep),
        numbers[keep],
        skipped=len(problems),
        problems=described,
    )
    if len(pairs) == 0:
        reason = "empty file" if is_file and not problems else "no valid rows"
        raise SecmlError(f"{label}: no entity,ip pairs ({reason})")
    return pairs


def read_pairs_csv(path: str | os.PathLike, *, skip_invalid: bool = False):
    """A headerless `entity,ip` CSV as a DataFrame (columns ``entity``, ``ip``), checked.

    ``df.attrs["skipped"]`` holds how many invalid rows ``skip_invalid=True`` left out.
    """
    import pandas as pd

    pairs = load_pairs(path, skip_invalid=skip_invalid)
    frame = pd.DataFrame({"entity": pairs.entities, "ip": pairs.ip_texts})
    frame.attrs["skipped"] = pairs.skipped
    return frame
