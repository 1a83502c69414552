"""The notebook's `sagemaker` backend, driven against moto with real boto3 calls.

The notebook's helper cells are executed in-process (they are plain functions of a boto3
client), so these tests exercise the very code attendees run.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import boto3
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sagemakerruntime.models import sagemakerruntime_backends

from tests.notebook_cells import forget_cleanup, load_helpers

REGION = "us-west-2"
ROLE_ARN = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/secml-notebook"
SIX_MB = 6 * 1024 * 1024


@pytest.fixture
def nb():
    namespace = load_helpers("helpers", "sagemaker-helpers")
    yield namespace
    forget_cleanup(namespace)


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        yield session.client("sagemaker"), session.client("sagemaker-runtime")


class FakeIPInsightsEndpoint:
    """Answers InvokeEndpoint like the built-in IP Insights container, through moto.

    moto's invoke_endpoint returns canned bodies from a queue; this hook records every request
    and queues a response with one prediction per CSV line, so the notebook's parsing and
    ordering logic meet a realistic answer.
    """

    def __init__(self, runtime):
        self.requests: list[dict] = []
        runtime.meta.events.register(
            "provide-client-params.sagemaker-runtime.InvokeEndpoint", self._answer
        )

    def _answer(self, params, **_):
        self.requests.append(dict(params))
        lines = params["Body"].decode().splitlines()
        offset = sum(len(r["Body"].decode().splitlines()) for r in self.requests[:-1])
        predictions = [{"dot_product": -float(offset + i)} for i in range(len(lines))]
        backend = sagemakerruntime_backends[DEFAULT_ACCOUNT_ID][REGION]
        backend.results_queue.append(
            (json.dumps({"predictions": predictions}), "application/json", "AllTraffic", "")
        )


def pairs(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "principal": [f"AIDA{i % 37:016d}" for i in range(n)],
            "ip": [f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in range(n)],
        }
    )


def tags_of(sm, arn: str) -> dict:
    return {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]}


def test_image_uri_is_the_regional_ipinsights_image(nb):
    assert (
        nb["ipinsights_image_uri"]("us-west-2")
        == "174872318107.dkr.ecr.us-west-2.amazonaws.com/ipinsights:1"
    )
    assert nb["ipinsights_image_uri"]("cn-north-1").endswith(".amazonaws.com.cn/ipinsights:1")
    with pytest.raises(ValueError, match="not available"):
        nb["ipinsights_image_uri"]("xx-nowhere-1")


def test_resource_names_are_prefixed_unique_and_valid(nb):
    names = {nb["resource_name"]("ipinsights-config") for _ in range(50)}
    assert len(names) == 50
    for name in names:
        assert name.startswith("secml-ipinsights-config-")
        assert len(name) <= 63
        assert all(c.isalnum() or c == "-" for c in name)


def test_training_job_request_shape_and_tags(nb, aws):
    sm, _ = aws
    hyperparameters = {
        "num_entity_vectors": 74,
        "vector_dim": 128,
        "random_negative_sampling_rate": 5,
        "mini_batch_size": 1000,
        "epochs": 5,
        "learning_rate": 0.01,
    }
    artifacts = nb["train_ipinsights"](
        sm,
        job_name="secml-ipinsights-test",
        image_uri=nb["ipinsights_image_uri"](REGION),
        role_arn=ROLE_ARN,
        train_s3_uri="s3://tuples/ipinsights/secml-ipinsights-test/train/x.csv",
        output_s3_uri="s3://tuples/ipinsights/output",
        hyperparameters=hyperparameters,
        instance_type="ml.m5.large",
        tags=nb["stack_tags"]("SecmlWorkshop"),
        poll_seconds=1,
    )
    job = sm.describe_training_job(TrainingJobName="secml-ipinsights-test")
    assert artifacts == job["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifacts.startswith("s3://tuples/ipinsights/output/")
    assert job["AlgorithmSpecification"]["TrainingImage"] == (
        "174872318107.dkr.ecr.us-west-2.amazonaws.com/ipinsights:1"
    )
    assert job["HyperParameters"] == {k: str(v) for k, v in hyperparameters.items()}
    (channel,) = job["InputDataConfig"]
    assert channel["ChannelName"] == "train"
    assert channel["ContentType"] == "text/csv"
    assert channel["DataSource"]["S3DataSource"]["S3Uri"].endswith("/train/x.csv")
    assert job["ResourceConfig"]["InstanceType"] == "ml.m5.large"
    assert tags_of(sm, job["TrainingJobArn"])["secml:stack"] == "SecmlWorkshop"


def test_endpoint_lifecycle_chunks_under_6mb_and_deletes_everything(nb, aws):
    sm, runtime = aws
    endpoint = FakeIPInsightsEndpoint(runtime)
    tags = nb["stack_tags"]("SecmlWorkshop")
    data = pairs(12_345)
    with nb["deployed_endpoint"](
        sm,
        model_data_uri="s3://tuples/ipinsights/output/job/output/model.tar.gz",
        image_uri=nb["ipinsights_image_uri"](REGION),
        role_arn=ROLE_ARN,
        instance_type="ml.m5.large",
        tags=tags,
        poll_seconds=1,
    ) as endpoint_name:
        assert endpoint_name.startswith("secml-ipinsights-")
        described = sm.describe_endpoint(EndpointName=endpoint_name)
        assert described["EndpointStatus"] == "InService"
        config = sm.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
        (variant,) = config["ProductionVariants"]
        assert variant["InstanceType"] == "ml.m5.large"
        model = sm.describe_model(ModelName=variant["ModelName"])
        assert model["PrimaryContainer"]["Image"].endswith("/ipinsights:1")
        assert model["ExecutionRoleArn"] == ROLE_ARN
        for arn in (described["EndpointArn"], config["EndpointConfigArn"], model["ModelArn"]):
            assert tags_of(sm, arn)["secml:stack"] == "SecmlWorkshop"
        for name in (endpoint_name, variant["ModelName"], described["EndpointConfigName"]):
            assert name.startswith("secml-")

        assert nb["endpoints_still_there"](sm) == [f"{endpoint_name} (InService)"]
        scores = nb["invoke_in_chunks"](runtime, endpoint_name, data)

    # every tuple scored, in order
    np.testing.assert_array_equal(scores, -np.arange(len(data), dtype=float))
    assert len(endpoint.requests) == 3  # 12,345 rows in chunks of at most 5,000
    for request in endpoint.requests:
        assert request["EndpointName"] == endpoint_name
        assert request["ContentType"] == "text/csv"
        assert request["Accept"] == "application/json"
        assert len(request["Body"]) < SIX_MB
    sent = b"".join(r["Body"] for r in endpoint.requests).decode().splitlines()
    assert sent[0] == f"{data.principal[0]},{data.ip[0]}"  # no header row
    assert len(sent) == len(data)
    # the with block deleted what bills by the hour
    assert sm.list_endpoints()["Endpoints"] == []
    assert sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert sm.list_models()["Models"] == []
    assert nb["CREATED"] == {"endpoint": [], "endpoint_config": [], "model": []}
    assert nb["endpoints_still_there"](sm) == []


def _deployed_endpoint(nb, sm):
    """The notebook's deployed_endpoint() for a model that is already in the tuples bucket."""
    return nb["deployed_endpoint"](
        sm,
        model_data_uri="s3://tuples/model.tar.gz",
        image_uri=nb["ipinsights_image_uri"](REGION),
        role_arn=ROLE_ARN,
        instance_type="ml.m5.large",
        tags=nb["stack_tags"]("SecmlWorkshop"),
        poll_seconds=1,
    )


def test_endpoint_is_deleted_when_scoring_fails(nb, aws):
    sm, _ = aws
    with (
        pytest.raises(RuntimeError, match="scoring failed"),
        _deployed_endpoint(nb, sm),
    ):
        assert len(sm.list_endpoints()["Endpoints"]) == 1
        raise RuntimeError("scoring failed")
    assert sm.list_endpoints()["Endpoints"] == []
    assert sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert sm.list_models()["Models"] == []


def test_cleanup_is_idempotent_and_tolerates_resources_already_gone(nb, aws):
    sm, _ = aws
    nb["CREATED"]["endpoint"].append("secml-ipinsights-never-created")
    nb["CREATED"]["model"].append("secml-ipinsights-model-never-created")
    report = nb["cleanup"](sm)
    assert [outcome for _, _, outcome in report] == ["already gone", "already gone"]
    assert nb["cleanup"](sm) == []


def test_a_wrong_prediction_count_is_an_error_not_a_silent_misalignment(nb, aws):
    _, runtime = aws
    backend = sagemakerruntime_backends[DEFAULT_ACCOUNT_ID][REGION]
    backend.results_queue.append(
        (json.dumps({"predictions": [{"dot_product": 1.0}]}), "application/json", "v", "")
    )
    with pytest.raises(RuntimeError, match="sent 2 tuples, got 1"):
        nb["invoke_in_chunks"](runtime, "secml-ipinsights-x", pairs(2))


def test_request_bodies_respect_the_byte_limit(nb):
    long_principal = "A" * 1000
    data = pd.DataFrame({"principal": [long_principal] * 50, "ip": ["192.0.2.1"] * 50})
    chunks = list(nb["csv_request_bodies"](data, max_bytes=10_000, max_rows=1_000))
    assert sum(rows for rows, _ in chunks) == 50
    assert all(len(body) <= 10_000 for _, body in chunks)
    assert all(body.count(b"\n") == rows for rows, body in chunks)
    assert len(chunks) == 6  # 9 lines of 1,011 bytes fit in 10,000


def test_ipv6_is_filtered_for_the_built_in(nb):
    data = pd.DataFrame(
        {"principal": ["a", "b", "c"], "ip": ["192.0.2.1", "2001:db8::1", "198.51.100.7"]}
    )
    assert list(nb["ipv4_only"](data)["ip"]) == ["192.0.2.1", "198.51.100.7"]


def test_an_endpoint_still_being_created_is_deleted_once_it_settles(nb, aws):
    """Interrupting the scoring cell while the endpoint is Creating must not leak it."""
    sm, _ = aws
    refusals = []

    def refuse_first_delete(**_):
        if refusals:
            return None  # the second attempt goes to moto
        refusals.append(1)
        error = {"Code": "ValidationException", "Message": "Endpoint is in Creating status"}
        return SimpleNamespace(status_code=400), {"Error": error, "ResponseMetadata": {}}

    sm.meta.events.register("before-call.sagemaker.DeleteEndpoint", refuse_first_delete)
    with _deployed_endpoint(nb, sm):
        pass
    assert refusals == [1]
    assert sm.list_endpoints()["Endpoints"] == []
    assert sm.list_models()["Models"] == []
