"""What both ingest Lambdas share: the tuple output and its CSV-lines sequence."""

from __future__ import annotations

import multiprocessing
import pickle

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
    import gzip

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
