"""What both ingest Lambdas share: the tuple output and its CSV-lines sequence."""

from __future__ import annotations

import gzip
import multiprocessing
import pickle
import zlib

import pytest

from lambda_src import ingest_common as common

TUPLES = [("AIDAONE", "203.0.113.1"), ("AROATWO", "2001:db8::1"), ("AIDAONE", "198.51.100.7")]
CSV = b"AIDAONE,203.0.113.1\nAROATWO,2001:db8::1\nAIDAONE,198.51.100.7\n"


def test_csv_tuples_read_like_the_list_of_tuples_they_hold():
    block = common.CsvTuples(CSV, 3)
    assert len(block) == 3 and bool(block)
    assert block == TUPLES and list(block) == TUPLES
    assert block[1] == ("AROATWO", "2001:db8::1") and block[-1] == TUPLES[-1]
    assert block[:2] == TUPLES[:2]
    assert block != TUPLES[:2]
    assert "AROATWO" in repr(block)
    empty = common.CsvTuples(b"", 0)
    assert not empty and list(empty) == []


def test_output_writes_lists_and_csv_tuples_alike(tmp_path):
    for n, tuples in enumerate((TUPLES, common.CsvTuples(CSV, 3))):
        out = common.TupleOutput(str(tmp_path / f"{n}.csv"))
        out.write(tuples)
        out.write([])
        out.write(common.CsvTuples(b"", 0))
        assert out.count == 3
        assert out.publish() == str(tmp_path / f"{n}.csv")
    assert (tmp_path / "0.csv").read_bytes() == (tmp_path / "1.csv").read_bytes() == CSV
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.csv", "1.csv"]  # no spool left


def test_output_with_no_tuples_publishes_nothing(tmp_path):
    out = common.TupleOutput(str(tmp_path / "none.csv"))
    out.write(common.CsvTuples(b"", 0))
    assert out.publish() is None
    assert list(tmp_path.iterdir()) == []


def _decompress_after_reuse_heap(conn, blob):
    conn.send((common.reuse_heap(), common.gunzip(blob)))


def test_reuse_heap_takes_on_glibc_and_changes_no_result():

    data = b'{"Records":[]}' * 50_000
    ctx = multiprocessing.get_context("fork")  # in a child: it changes the process's allocator
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_decompress_after_reuse_heap, args=(child, gzip.compress(data)))
    proc.start()
    took, result = parent.recv()
    proc.join()
    assert took is True  # this Linux is glibc: the setting is accepted
    assert result == data


@pytest.mark.parametrize("tuples", [TUPLES, common.CsvTuples(CSV, 3)])
def test_csv_tuples_pickle(tuples):
    assert pickle.loads(pickle.dumps(tuples)) == TUPLES


GOOD_GZIP = gzip.compress(b'{"Records":[]}' * 100, mtime=0)
GZIP_CASES = {
    "whole": GOOD_GZIP,
    "truncated": GOOD_GZIP[:-5],
    "bad crc": GOOD_GZIP[:-8] + b"\0\0\0\0" + GOOD_GZIP[-4:],
    "corrupt deflate": GOOD_GZIP[:20] + b"\xff" * 10 + GOOD_GZIP[30:],
    "two members": GOOD_GZIP + GOOD_GZIP,
    "trailing zeros": GOOD_GZIP + b"\0" * 10,
    "trailing junk": GOOD_GZIP + b"junk",
    "empty member after": GOOD_GZIP + gzip.compress(b"", mtime=0),
}


@pytest.mark.parametrize("case", sorted(GZIP_CASES))
def test_isal_and_zlib_inflate_give_the_same_answer(monkeypatch, case):
    """isal's igzip (the CLI) and zlib (the Lambda runtime): the same bytes, or both bad-gzip."""
    assert common.igzip is not None  # installed with the CLI: this test compares the two
    blob = GZIP_CASES[case]
    try:
        expected = (gzip.decompress(blob), None)
    except (EOFError, OSError, zlib.error):
        expected = (None, "bad-gzip")
    answers = {}
    for name, igzip in (("isal", common.igzip), ("zlib", None)):
        monkeypatch.setattr(common, "igzip", igzip)
        data, skip = common.try_decompress(blob)
        answers[name] = (data, skip and skip[0])
    assert answers == {"isal": expected, "zlib": expected}
