"""The Athena runner function: UNLOAD of the named query, parts joined into one CSV, cleaned up.

S3 is moto. Athena is botocore's Stubber: moto 5.2 cannot parse this botocore's Athena protocol
("Not yet implemented" for every call). No SQL runs here: the part files UNLOAD would write are
put in its folder by the test."""

from __future__ import annotations

import gzip
import uuid

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from lambda_src.athena_tuples import index
from secml.sql.query import tuple_query

REGION = "us-west-2"
RUN_ID = uuid.UUID("00000000-0000-4000-8000-000000000014")
PARTS = f"unload/{RUN_ID}/"
QUERY_ID = "11111111-2222-3333-4444-555555555555"


@pytest.fixture
def deployed(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setattr(index.uuid, "uuid4", lambda: RUN_ID)
    monkeypatch.setattr(index, "POLL_SECONDS", 0)
    for name, value in {
        "NAMED_QUERY_ID": "nq-1",
        "WORKGROUP": "wg",
        "RESULTS_BUCKET": "results-bucket",
        "UNLOAD_PREFIX": "unload/",
        "OUTPUT_BUCKET": "tuples-bucket",
        "OUTPUT_KEY": "train/cloudtrail_tuples.csv",
        "IPV4_ONLY": "true",
    }.items():
        monkeypatch.setenv(name, value)
    index._clients.clear()
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in ("results-bucket", "tuples-bucket"):
            s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
        athena = boto3.client("athena", region_name=REGION)
        index._clients["athena"] = athena
        with Stubber(athena) as stub:
            yield s3, stub
            stub.assert_no_pending_responses()
    index._clients.clear()


def _started(stub: Stubber, parameters=ANY) -> None:
    named = {"Name": "cloudtrail-tuples", "Database": "db", "QueryString": tuple_query("athena")}
    stub.add_response("get_named_query", {"NamedQuery": named}, {"NamedQueryId": "nq-1"})
    expected = {
        "QueryString": ANY,
        "QueryExecutionContext": {"Database": "db"},
        "WorkGroup": "wg",
        "ExecutionParameters": parameters,
    }
    stub.add_response("start_query_execution", {"QueryExecutionId": QUERY_ID}, expected)


def _state(stub: Stubber, state: str, reason: str = "") -> None:
    execution = {
        "QueryExecutionId": QUERY_ID,
        "Status": {"State": state, "StateChangeReason": reason},
        "Statistics": {"DataScannedInBytes": 2 * 10**9},
    }
    stub.add_response(
        "get_query_execution", {"QueryExecution": execution}, {"QueryExecutionId": QUERY_ID}
    )


def test_unload_parts_become_the_one_csv_the_notebook_reads(deployed, monkeypatch):
    s3, stub = deployed
    # UNLOAD's TEXTFILE parts: gzipped, one without a final newline, one empty
    put = s3.put_object
    put(Bucket="results-bucket", Key=PARTS + "a.gz", Body=gzip.compress(b"P1,192.0.2.1\nP2,::1\n"))
    put(Bucket="results-bucket", Key=PARTS + "b.gz", Body=gzip.compress(b"P1,192.0.2.1"))
    put(Bucket="results-bucket", Key=PARTS + "c.gz", Body=gzip.compress(b""))
    literals = ["'2025/06/02'", "'2025/06/02'", "''", "''", "'111122223333'", "'111122223333'"]
    _started(stub, literals + ["''", "''", "'true'"])
    _state(stub, "RUNNING")
    _state(stub, "SUCCEEDED")
    statements = []
    real = index.client("athena").start_query_execution
    monkeypatch.setattr(
        index.client("athena"),
        "start_query_execution",
        lambda **kw: statements.append(kw["QueryString"]) or real(**kw),
    )
    result = index.handler({"first_day": "2025-06-02", "accounts": "111122223333"}, None)
    body = s3.get_object(Bucket="tuples-bucket", Key="train/cloudtrail_tuples.csv")["Body"].read()
    assert body == b"P1,192.0.2.1\nP2,::1\nP1,192.0.2.1\n"
    assert result["tuples_written"] == 3 and result["parts"] == 3
    assert result["estimated_cost_usd"] == 0.01  # 2 GB at $5 per TB
    assert "Contents" not in s3.list_objects_v2(Bucket="results-bucket", Prefix="unload/")
    (statement,) = statements
    assert statement.startswith(f"UNLOAD ({tuple_query('athena')})")
    assert f"TO 's3://results-bucket/{PARTS}'" in statement
    assert "WITH (format = 'TEXTFILE', field_delimiter = ',')" in statement


def test_no_rows_writes_nothing(deployed):
    s3, stub = deployed
    _started(stub)
    _state(stub, "SUCCEEDED")
    result = index.handler({}, None)
    assert result["output"] is None and result["tuples_written"] == 0
    assert "Contents" not in s3.list_objects_v2(Bucket="tuples-bucket")


def test_a_failed_query_writes_nothing_and_removes_its_parts(deployed):
    s3, stub = deployed
    s3.put_object(Bucket="results-bucket", Key=PARTS + "a.gz", Body=gzip.compress(b"P,1.2.3.4\n"))
    _started(stub)
    _state(stub, "FAILED", "Query exhausted the bytes scanned limit")
    with pytest.raises(RuntimeError, match="FAILED: Query exhausted the bytes scanned limit"):
        index.handler({}, None)
    assert "Contents" not in s3.list_objects_v2(Bucket="tuples-bucket")
    assert "Contents" not in s3.list_objects_v2(Bucket="results-bucket", Prefix="unload/")


def test_bad_filters_start_no_query(deployed):
    with pytest.raises(ValueError, match="account"):
        index.handler({"accounts": "1234'; DROP TABLE x"}, None)


def test_a_query_near_the_time_limit_is_stopped(deployed):
    s3, stub = deployed
    s3.put_object(Bucket="results-bucket", Key=PARTS + "a.gz", Body=gzip.compress(b"P,1.2.3.4\n"))

    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 1000

    _started(stub)
    _state(stub, "RUNNING")
    stub.add_response("stop_query_execution", {}, {"QueryExecutionId": QUERY_ID})
    with pytest.raises(TimeoutError):
        index.handler({}, Context())
    assert "Contents" not in s3.list_objects_v2(Bucket="results-bucket", Prefix="unload/")


def test_the_cost_estimate_bills_at_least_10_mb(deployed):
    _, stub = deployed
    _started(stub)
    execution = {"QueryExecutionId": QUERY_ID, "Status": {"State": "SUCCEEDED"}}
    execution["Statistics"] = {"DataScannedInBytes": 1000}
    stub.add_response("get_query_execution", {"QueryExecution": execution}, None)
    assert index.handler({}, None)["estimated_cost_usd"] == 0.00005  # 10 MB at $5 per TB
