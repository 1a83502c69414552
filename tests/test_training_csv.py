"""Training CSV: one bad row costs one row, reported at its own line (issue 17)."""

import pytest

from secml.errors import SecmlError
from secml.ipinsights.data import CsvBytes, load_pairs


def _rows(n, start=0):
    return [f"user{i},10.0.{i // 250}.{i % 250}" for i in range(start, start + n)]


def _csv(lines):
    return CsvBytes(("\n".join(lines) + "\n").encode(), name="t.csv")


def test_a_stray_quote_costs_its_own_line_only():
    lines = _rows(10) + ['"mallory,10.9.9.9'] + _rows(389, start=10)
    pairs = load_pairs(_csv(lines), skip_invalid=True)
    assert len(pairs) == 399
    assert pairs.skipped == 1
    assert pairs.problems[0].startswith("t.csv line 11: malformed CSV: a double quote")
    with pytest.raises(SecmlError, match=r"t\.csv line 11: malformed CSV") as caught:
        load_pairs(_csv(lines))
    assert "more invalid" not in str(caught.value)


@pytest.mark.parametrize(
    "bad",
    [
        '"a"b,10.0.0.1',  # text after a closing quote
        '"never closed,10.0.0.1',
        '"multi\nline",10.0.0.1',  # a quoted newline: two bad lines, never one tuple
    ],
)
def test_quote_problems_are_reported_at_their_line(bad):
    lines = _rows(3) + [bad] + _rows(3, start=3)
    pairs = load_pairs(_csv(lines), skip_invalid=True)
    assert [int(n) for n in pairs.line_numbers] == [1, 2, 3] + [
        n for n in range(5, 5 + 3 + bad.count("\n"))
    ][-3:]
    assert pairs.problems[0].startswith("t.csv line 4:")


def test_tuples_are_plain_csv_as_the_writers_make_them():
    """The tuple writers never quote (a field with ',' or '"' is skipped there): a quoted
    line here is refused at its line, like any other line the writers cannot have made."""
    pairs = load_pairs(_csv(['"a,b",10.0.0.1', "c,10.0.0.3", 'd"e,10.0.0.4']), skip_invalid=True)
    assert list(pairs.entities) == ["c"] and pairs.skipped == 2
    memory = load_pairs(
        [("a,b", "10.0.0.1"), ('q"', "10.0.0.2"), ("c", "10.0.0.3")], skip_invalid=True
    )
    assert list(memory.entities) == ["c"] and memory.skipped == 2


@pytest.mark.parametrize("control", ["\r", "\x00", "\x1b", "\x7f", "\x85", "\u2028", "\u200b"])
def test_a_principal_with_a_non_printable_character_is_refused(control):
    lines = _rows(2) + [f"bad{control}user,10.0.0.9"] + _rows(2, start=2)
    pairs = load_pairs(_csv(lines), skip_invalid=True)
    assert len(pairs) == 4 and pairs.skipped == 1
    assert "line 3: entity has a non-printable character" in pairs.problems[0]


@pytest.mark.parametrize("control", ["\r", "\n", "\x00", "\u2028", "\ud800"])
def test_in_memory_pairs_follow_the_same_rule(control):
    memory = load_pairs([("a", "10.0.0.1"), (f"b{control}c", "10.0.0.2")], skip_invalid=True)
    assert list(memory.entities) == ["a"] and memory.skipped == 1


def test_a_line_feed_inside_a_principal_is_two_lines_each_judged_alone():
    lines = _rows(2) + ["bad\nuser,10.0.0.9"] + _rows(2, start=2)
    pairs = load_pairs(_csv(lines), skip_invalid=True)
    assert pairs.skipped == 1 and "line 3: expected 2 fields" in pairs.problems[0]
    assert [int(n) for n in pairs.line_numbers] == [1, 2, 4, 5, 6]


def test_crlf_line_ends_and_blank_padding_are_fine():
    raw = b"a , 10.0.0.1\r\n\tb\t,10.0.0.2\r\n"
    pairs = load_pairs(CsvBytes(raw))
    assert list(pairs.entities) == ["a", "b"]
    assert pairs.skipped == 0


def test_the_reader_takes_every_principal_the_writers_write_and_nothing_else():
    """One rule for a tuple field: the CSV the ingest writes (tuple_line) is exactly what
    training reads; a field the writers skip is refused here, at its line."""
    import random

    from lambda_src.ingest_common import tuple_line

    rng = random.Random(17)
    alphabet = ["a", "Z", "0", ":", "-", " ", "\t", ",", '"', "\r", "\x00", "\x85", "\u2028",
                "é", "\ud800", "\ufeff", "\u200b", "ü", "/"]  # fmt: skip
    for _ in range(2000):
        principal = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 5)))
        written = tuple_line(principal, "192.0.2.1")
        stripped = principal.strip(" \t")
        if written is not None:
            pairs = load_pairs(CsvBytes(written, name="t.csv"))
            assert len(pairs) == 1 and pairs.entities[0] == principal, principal
        elif stripped == principal and "\n" not in principal and "\r" not in principal:
            # after a good first line, so that a leading U+FEFF is not read as the file's BOM
            line = f"u,192.0.2.9\n{principal},192.0.2.1\n".encode("utf-8", "surrogatepass")
            with pytest.raises(SecmlError):
                load_pairs(CsvBytes(line, name="t.csv"))
