"""CloudTrail ingest with worker processes (INGEST_WORKERS): the sequential run's exact output,
summary and printed records, on the workshop preset and on every kind of bad input."""

from __future__ import annotations

import gzip
import multiprocessing
from pathlib import Path

import pytest

from lambda_src import cloudtrail_logs as logs
from lambda_src import ingest_common as common
from lambda_src.cloudtrail_ingest import index
from tests.ingest_support import (
    aws,
    ct_key,
    keys,
    load_staged,
    log_bytes,
    record,
    uncomment_after_todo,
)
from tests.test_ingest_cloudtrail import messy_bucket

WORKSHOP = Path(__file__).resolve().parents[1] / "data" / "workshop" / "cloudtrail"
OUTPUT = "train/cloudtrail_tuples.csv"


def run_s3(monkeypatch, capsys, workers: int, handler=index.handler, **event):
    """(output bytes or None, summary, printed text) of one run against the messy bucket."""
    with aws(monkeypatch) as s3:
        messy_bucket(s3)
        for n in range(11, 30):  # more files than the pool holds in flight
            recs = [record(f"AIDAMANY{n}", f"198.51.100.{n}")] * n + [
                record("AIDAX", "AWS Internal")
            ]
            s3.put_object(Bucket="data-bucket", Key=ct_key(n), Body=log_bytes(recs))
        monkeypatch.setenv("INGEST_WORKERS", str(workers))
        capsys.readouterr()
        result = handler(event, None)
        body = (
            s3.get_object(Bucket="tuples-bucket", Key=OUTPUT)["Body"].read()
            if OUTPUT in keys(s3)
            else None
        )
    return body, result, capsys.readouterr().out


@pytest.mark.parametrize("event", [{}, {"ipv4_only": True}, {"print_limit": 0}])
def test_workers_match_sequential_on_bad_input_in_s3(monkeypatch, capsys, event):
    one = run_s3(monkeypatch, capsys, 1, **event)
    two = run_s3(monkeypatch, capsys, 2, **event)
    three = run_s3(monkeypatch, capsys, 3, **event)
    assert one[0] is not None and one[1]["files_skipped"]
    assert one == two == three


def test_the_edited_exercise_matches_the_solution_with_workers(monkeypatch, capsys, tmp_path):
    """The attendee's edit (get_tuple() per record, one process) and the solution (scan, two
    workers) write the same tuples and counts, and print the same first records."""
    edited = load_staged(
        "cloudtrail_ingest",
        solutions=False,
        out_dir=tmp_path,
        edit=lambda text: uncomment_after_todo(text, "TODO (exercise 2.1, step 3)"),
    )
    plain = run_s3(monkeypatch, capsys, 1, handler=edited.handler)
    two = run_s3(monkeypatch, capsys, 2)
    assert plain == two
    assert plain[0] is not None and plain[1]["skipped"]["aws-internal"] == 19 + 1
    assert "DescribeInstances principal=AIDAUSER1 ip=203.0.113.10" in two[2]


def local_run(monkeypatch, capsys, workers: int, sources: list, out: Path, **event):
    monkeypatch.setenv("INGEST_WORKERS", str(workers))
    capsys.readouterr()
    result = index.handler(
        {"sources": [str(s) for s in sources], "output": str(out), **event}, None
    )
    return (out.read_bytes() if out.exists() else None), result, capsys.readouterr().out


def test_workers_match_sequential_on_the_workshop_preset(monkeypatch, capsys, tmp_path):
    for ipv4_only in (False, True):
        one = local_run(monkeypatch, capsys, 1, [WORKSHOP], tmp_path / "1.csv", ipv4_only=ipv4_only)
        two = local_run(monkeypatch, capsys, 2, [WORKSHOP], tmp_path / "2.csv", ipv4_only=ipv4_only)
        assert one[1]["files_read"] > 100 and one[1]["files_skipped"]  # digests among them
        assert one[0] == two[0]
        assert one[1]["output"].endswith("1.csv") and two[1]["output"].endswith("2.csv")
        assert {**one[1], "output": None} == {**two[1], "output": None}
        assert one[2] == two[2]


def bad_folder(folder: Path) -> Path:
    folder.mkdir()
    whole = log_bytes([record("AIDATRUNCATED", "192.0.2.1")] * 200)
    files = {
        "a.json.gz": log_bytes([record("AIDAA", "203.0.113.1"), record("AIDAA", "my.host")]),
        "b.json.gz": whole[: len(whole) // 2],  # truncated: all or nothing
        "c.json.gz": gzip.compress(b"<html>503</html>"),
        "d.json.gz": log_bytes([]),
        "e.json.gz": b"",
        "f.json": log_bytes([record("AIDAF", "2001:DB8::1")], compress=False),
        "g.json.gz": gzip.compress(b'{"hello": "world"}'),
        "h.json.gz": log_bytes([record("AIDAH", "198.51.100.1")], compact=False),
    }
    for name, body in files.items():
        (folder / name).write_bytes(body)
    return folder


def test_workers_match_sequential_on_bad_local_files(monkeypatch, capsys, tmp_path):
    src = bad_folder(tmp_path / "in")
    started, real_start = [], common.WorkerPool.start

    def spy(n, work):
        started.append(pool := real_start(n, work))
        return pool

    monkeypatch.setattr(common.WorkerPool, "start", spy)
    one = local_run(monkeypatch, capsys, 1, [src, WORKSHOP], tmp_path / "1.csv")
    two = local_run(monkeypatch, capsys, 2, [src, WORKSHOP], tmp_path / "2.csv")
    assert one[0] == two[0] and b"AIDATRUNCATED" not in one[0]
    assert {**one[1], "output": None} == {**two[1], "output": None}
    assert one[1]["files_skipped"]["bad-gzip"] == 1
    assert one[2] == two[2]
    assert len(started) == 1 and started[0] is not None  # workers=1 never starts a pool


def test_a_pool_that_cannot_start_falls_back_to_sequential(monkeypatch, capsys, tmp_path):
    one = local_run(monkeypatch, capsys, 1, [WORKSHOP], tmp_path / "1.csv")

    def no_fork(method=None):
        raise OSError("Function not implemented")

    monkeypatch.setattr(multiprocessing, "get_context", no_fork)
    two = local_run(monkeypatch, capsys, 2, [WORKSHOP], tmp_path / "2.csv")
    assert one[0] == two[0]


def test_a_failing_worker_fails_the_run_and_leaves_no_output(monkeypatch, tmp_path):
    def broken(blob, **how):
        raise MemoryError("worker out of memory")

    monkeypatch.setattr(logs, "parse_log", broken)  # the forked workers inherit it
    monkeypatch.setenv("INGEST_WORKERS", "2")
    out = tmp_path / "out.csv"
    with pytest.raises(RuntimeError, match="worker out of memory"):
        index.handler({"sources": [str(WORKSHOP)], "output": str(out)}, None)
    assert list(tmp_path.iterdir()) == []
    assert multiprocessing.active_children() == []


def test_a_failed_run_with_workers_stops_them_and_leaves_no_output(monkeypatch):
    with aws(monkeypatch) as s3:
        for n in range(12):
            s3.put_object(Bucket="data-bucket", Key=ct_key(n), Body=log_bytes([record()]))
        real = logs._work

        def failing(get_tuple, name, *args):
            if name.endswith(ct_key(3).rsplit("/", 1)[-1]):
                raise RuntimeError("Lambda ran out of time")
            return real(get_tuple, name, *args)

        monkeypatch.setattr(logs, "_work", failing)
        monkeypatch.setenv("INGEST_WORKERS", "2")
        with pytest.raises(RuntimeError, match="ran out of time"):
            index.handler({}, None)
        assert keys(s3) == []
    assert multiprocessing.active_children() == []


def test_worker_count_from_the_environment(monkeypatch):
    monkeypatch.setenv("INGEST_WORKERS", "3")
    assert common.worker_count() == 3
    monkeypatch.setenv("INGEST_WORKERS", "0")
    assert common.worker_count() == 1
    monkeypatch.delenv("INGEST_WORKERS")
    assert common.worker_count() >= 1
    monkeypatch.setenv("INGEST_WORKERS", "two")
    assert common.worker_count() >= 1
