"""Scoring at volume: distinct values once, and `secml score` streamed in blocks.

Logs repeat themselves: a few thousand principals, tens of thousands of addresses, millions of
rows. So scoring works on *codes*: entities and addresses are factorized (pandas' hash tables),
each distinct entity is hashed and looked up once, each distinct address parsed and summed
once, each distinct (entity, address) pair scored once (``IPInsights.score_distinct``), and
the scores are spread back over the rows.

`secml score` reads its CSV in blocks of whole lines (``BLOCK_BYTES``), scores each block and
writes its JSON lines to a spool (memory, then a temporary file past ``SPOOL_BYTES``), so its
peak memory does not grow with the input; the spool reaches stdout only when the whole input
has been read and checked, so a bad row stops the command with no partial output (the bad-input
rule). A block of plain lines (printable ASCII, one comma, no quotes or spaces: what the
`tuples` command writes) is split with two string methods; any other block goes through the
same per-line CSV reader as ``load_pairs``, so both read the same rows with the same line
numbers and the same complaints.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from secml.errors import SecmlError, short, utf8_text

BLOCK_BYTES = 1 << 22  # 4 MiB of CSV per block: about 150,000 tuples
SPOOL_BYTES = 1 << 25  # output kept in memory up to 32 MiB, then in a temporary file
UTF8_BOM = b"\xef\xbb\xbf"
# bytes a plain block may hold besides "\n": printable ASCII but space and '"'
_PLAIN = bytes(c for c in range(0x21, 0x7F) if c != ord('"'))


def distinct_entity_hashes(uniques: list[str]) -> np.ndarray:
    """``data.entity_hashes`` of distinct strings: 64-bit blake2b of the UTF-8 bytes, big-endian
    (read in one ``frombuffer`` instead of one ``int.from_bytes`` per entity)."""
    digests = b"".join(
        hashlib.blake2b(u.encode("utf-8", "surrogatepass"), digest_size=8).digest() for u in uniques
    )
    return np.frombuffer(digests, dtype=">u8").astype(np.uint64)


def as_objects(values: Any) -> np.ndarray:
    """A 1-D object array of the values (no fixed-width string array on the way: building one
    costs more than the rest of scoring)."""
    if isinstance(values, np.ndarray):
        return values if values.dtype == object else values.astype(object)
    if hasattr(values, "to_numpy"):  # pandas Series, Index
        return values.to_numpy(dtype=object)
    values = values if hasattr(values, "__len__") else list(values)
    out = np.empty(len(values), dtype=object)
    out[:] = values  # one element per value, even for tuples
    return out


def factorize_texts(values: Any, *, clean: bool = False) -> tuple[np.ndarray, list[str]]:
    """(codes, distinct stripped strings) of a sequence of values, as ``str(v).strip()`` of
    each: the work is done per distinct value, and values that strip to the same string share
    a code. ``clean``: the values are already stripped strings (CSV fields).

    Strings are hashed by Arrow (``dictionary_encode``; about 3x pandas' object hash table);
    anything Arrow does not take as a string (None, numbers) goes through pandas.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(values, pa.Array | pa.ChunkedArray):
        strings = values
    else:
        objects = as_objects(values)
        try:
            strings = pa.array(objects, type=pa.string(), from_pandas=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            strings = None
        if strings is None or strings.null_count:
            return _factorize_objects(objects, clean=clean)
    encoded = pc.dictionary_encode(strings)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks() if encoded.num_chunks != 1 else encoded.chunk(0)
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    uniques = encoded.dictionary.to_pylist()
    if clean:
        return codes, uniques
    return _strip_distinct(codes, uniques)


def _factorize_objects(array: np.ndarray, *, clean: bool) -> tuple[np.ndarray, list[str]]:
    import pandas as pd

    codes, uniques = pd.factorize(array)
    codes = codes.astype(np.int64, copy=False)
    uniques = list(uniques)
    missing = np.flatnonzero(codes < 0)
    if len(missing):  # None, NaN: pandas merges them; str() of each tells them apart
        codes[missing] = len(uniques) + np.arange(len(missing))
        uniques += [array[i] for i in missing.tolist()]
    if clean and all(type(u) is str for u in uniques):
        return codes, uniques
    return _strip_distinct(codes, uniques)


def _strip_distinct(codes: np.ndarray, uniques: list) -> tuple[np.ndarray, list[str]]:
    import pandas as pd

    cleaned = [u.strip() if type(u) is str else str(u).strip() for u in uniques]
    again, distinct = pd.factorize(np.asarray(cleaned, dtype=object), use_na_sentinel=False)
    if len(distinct) < len(cleaned):
        codes = again[codes]
    return codes, list(distinct)


# ------------------------------------------------------------------------------- CSV blocks


@dataclass
class RowBlock:
    """Rows of one block: entity and address strings (stripped), their file line numbers, and
    the (line, why) of the lines that are not rows."""

    entities: Any  # list[str] or a pyarrow string array
    ips: Any
    numbers: np.ndarray
    problems: list[tuple[int, str]] = field(default_factory=list)


def open_csv(path: str | Path) -> IO[bytes]:
    """Open a CSV for reading, with load_pairs' messages for a file that cannot be read."""
    try:
        return open(path, "rb")  # noqa: SIM115 - closed by the caller
    except FileNotFoundError:
        raise SecmlError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SecmlError(f"{path}: is a directory, expected an entity,ip CSV file") from None
    except OSError as exc:
        raise SecmlError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _line_blocks(stream: IO[bytes], name: str) -> Iterator[tuple[bytes, int]]:
    """(block of whole lines ending in "\\n", number of its first line)."""
    carry = b""
    first_line = 1
    first_read = True
    while True:
        try:
            data = stream.read(BLOCK_BYTES)  # a buffered read: BLOCK_BYTES unless at the end
        except OSError as exc:
            raise SecmlError(f"{name}: cannot read: {exc.strerror or exc}") from None
        if first_read:
            # utf-8-sig, as load_pairs: a byte-order mark is dropped at the start of the input
            first_read = False
            data = data[len(UTF8_BOM) :] if data.startswith(UTF8_BOM) else data
        if not data:
            if carry:
                yield carry + b"\n", first_line
            return
        data = carry + data
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            carry = data
            continue
        block, carry = data[:cut], data[cut:]
        yield block, first_line
        first_line += block.count(b"\n")


def _plain_rows(block: bytes, first_line: int) -> RowBlock | None:
    """Rows of a plain block (every line ``entity,ip``: printable ASCII, one comma, no quote or
    space), split by Arrow's CSV reader into string columns (no Python string per row); None
    when the block is not plain."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    if b"\r" in block:
        if block.count(b"\r\n") != block.count(b"\r"):
            return None
        block = block.replace(b"\r\n", b"\n")
    if block.translate(None, _PLAIN).strip(b"\n,") or b"\n\n" in block or block[:1] == b"\n":
        return None  # other bytes, or a blank line: the per-line reader decides
    lines = block.count(b"\n")
    if block.count(b",") != lines:
        return None
    try:
        table = pcsv.read_csv(
            pa.py_buffer(block),
            read_options=pcsv.ReadOptions(
                column_names=["entity", "ip"], use_threads=False, block_size=len(block) + 1
            ),
            parse_options=pcsv.ParseOptions(quote_char=False, ignore_empty_lines=False),
            convert_options=pcsv.ConvertOptions(
                column_types={"entity": pa.string(), "ip": pa.string()},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:  # a line with no comma or two: the per-line reader says which
        return None
    if table.num_rows != lines:
        return None
    numbers = np.arange(first_line, first_line + lines, dtype=np.int64)
    return RowBlock(table.column("entity"), table.column("ip"), numbers)


def _csv_rows(block: bytes, first_line: int, name: str) -> RowBlock:
    """Rows of any block, by load_pairs' own per-line reader (file line numbers kept)."""
    from secml.ipinsights.data import _read_csv_rows

    utf8_text(block, name, first_line=first_line)  # the bad line's number in the whole file
    # a leading blank line (skipped by the reader) keeps a byte-order mark inside the input
    # part of its row, as it is when the whole file is read at once
    entities, ips, numbers, problems = _read_csv_rows(name, b"\n" + block)
    shift = first_line - 2
    return RowBlock(
        list(entities),
        list(ips),
        np.asarray(numbers, dtype=np.int64) + shift,
        [(line + shift, why) for line, why in problems],
    )


def row_blocks(stream: IO[bytes], name: str) -> Iterator[RowBlock]:
    for block, first_line in _line_blocks(stream, name):
        rows = _plain_rows(block, first_line)
        yield rows if rows is not None else _csv_rows(block, first_line, name)


# --------------------------------------------------------------------------------- scoring


def format_dot_products(scores: np.ndarray) -> bytes:
    """``{"dot_product": x}`` JSON lines, the shortest text that reads back as the same double
    (orjson's; the same digits as Python's ``repr``, exponents written as JSON allows)."""
    import orjson

    if len(scores) == 0:
        return b""
    body = orjson.dumps(np.asarray(scores, dtype=np.float64), option=orjson.OPT_SERIALIZE_NUMPY)
    return b'{"dot_product": ' + body[1:-1].replace(b",", b'}\n{"dot_product": ') + b"}\n"


@dataclass
class ScoreSummary:
    rows: int = 0  # lines written
    skipped: int = 0
    first_problem: str | None = None  # described, for the log


def score_csv(
    model,
    stream: IO[bytes],
    name: str,
    out: IO[bytes],
    *,
    skip_invalid: bool = False,
    verbose: bool = False,
) -> ScoreSummary:
    """Score a headerless entity,ip CSV stream into ``out``, with ``load_pairs``' rules and
    messages: a bad row stops it (SecmlError naming the first one and how many more there are,
    nothing written) unless ``skip_invalid``; a file without rows is an error."""
    from secml.ipinsights.addresses import parse_distinct_addresses
    from secml.ipinsights.data import Pairs

    summary = ScoreSummary()
    first_line = 0  # of the first problem
    failed = False  # a bad row without skip_invalid: read on only to count the rest
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="w+b")  # noqa: SIM115
    with spool:
        for block in row_blocks(stream, name):
            # both readers give stripped fields
            ent_codes, ent_uniq = factorize_texts(block.entities, clean=True)
            ip_codes, ip_uniq = factorize_texts(block.ips, clean=True)
            addresses, ok_u = parse_distinct_addresses(ip_uniq)
            bad_entity = np.asarray([not e for e in ent_uniq], dtype=bool)[ent_codes]
            bad_address = ~ok_u[ip_codes]
            bad = bad_entity | bad_address
            block_problems = list(block.problems)
            for i in np.flatnonzero(bad).tolist():
                why = (
                    "empty entity"
                    if bad_entity[i]
                    else f"{short(ip_uniq[ip_codes[i]])} is not an IPv4 or IPv6 address"
                )
                block_problems.append((int(block.numbers[i]), why))
            if block_problems:
                if not summary.skipped:
                    line, why = min(block_problems)
                    summary.first_problem = f"{name} line {line}: {why}"
                    first_line = line
                summary.skipped += len(block_problems)
                failed = failed or not skip_invalid
            if failed:
                continue
            keep = np.flatnonzero(~bad)
            if len(keep) == 0:
                continue
            if len(keep) < len(bad):
                ent_codes, ip_codes = ent_codes[keep], ip_codes[keep]
            if verbose:
                import json

                pairs = Pairs(
                    np.asarray(ent_uniq, dtype=object)[ent_codes],
                    np.asarray(ip_uniq, dtype=object)[ip_codes],
                    addresses.take(ip_codes),
                    block.numbers[keep],
                )
                response = model.predict_pairs(pairs, verbose=True)
                text = "".join(json.dumps(p) + "\n" for p in response["predictions"])
                spool.write(text.encode("utf-8"))
            else:
                scores = model.score_distinct(ent_uniq, ent_codes, addresses, ip_codes)
                spool.write(format_dot_products(scores))
            summary.rows += len(keep)
        if summary.skipped and not skip_invalid:
            more = summary.skipped - 1
            more = f" ({more} more invalid rows)" if more else ""
            hint = " (the input is headerless)" if first_line == 1 else ""
            raise SecmlError(
                f"{summary.first_problem}{hint}{more}; use --skip-invalid to skip invalid rows"
            )
        if summary.rows == 0:
            reason = "no valid rows" if summary.skipped else "empty file"
            raise SecmlError(f"{name}: no entity,ip pairs ({reason})")
        spool.seek(0)
        shutil.copyfileobj(spool, out, 1 << 20)
    return summary
