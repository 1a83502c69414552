"""The notebook's `sagemaker` backend (workshop_helpers.SageMakerIPInsights): the SageMaker
Python SDK v3 driven against moto, with real boto3 calls underneath.

moto lacks two things the SDK relies on; tests.notebook_cells.patch_moto_gaps answers them as
AWS would, and test_moto_still_lacks_what_the_fixture_patches says when a patch can go.
"""

from __future__ import annotations

import json
import sys

import boto3
import numpy as np
import pandas as pd
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sagemakerruntime.models import sagemakerruntime_backends

from tests.notebook_cells import create_notebook_role, load_helpers, patch_moto_gaps

REGION = "us-west-2"
BUCKET = "secml-tuples"
SIX_MB = 6 * 1024 * 1024
HYPERPARAMETERS = {
    "num_entity_vectors": 74,
    "vector_dim": 128,
    "random_negative_sampling_rate": 5,
    "mini_batch_size": 1000,
    "epochs": 5,
    "learning_rate": 0.01,
}


@pytest.fixture
def wh():
    return load_helpers()


@pytest.fixture
def aws(monkeypatch):
    """In-process moto: a boto3 session with the moto gaps patched, a role, the tuples bucket."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        patch_moto_gaps(session)
        role_arn = create_notebook_role(session)
        session.client("s3").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        yield session, role_arn


def backend(wh, aws):
    session, role_arn = aws
    config = {
        "region": REGION,
        "tuples_bucket": BUCKET,
        "stack_name": "SecmlWorkshop",
        "role_arn": role_arn,
    }
    return wh.SageMakerIPInsights(config, boto_session=session, poll_seconds=0)


class FakeIPInsightsEndpoint:
    """Answers InvokeEndpoint like the built-in IP Insights container, through moto.

    moto's invoke_endpoint returns canned bodies from a queue; this hook records every request
    and queues a response with one prediction per CSV line, so the parsing and ordering logic
    meet a realistic answer.
    """

    def __init__(self, session):
        self.requests: list[dict] = []
        session.events.register(
            "provide-client-params.sagemaker-runtime.InvokeEndpoint", self._answer
        )

    def _answer(self, params, **_):
        self.requests.append(dict(params))
        lines = params["Body"].decode().splitlines()
        offset = sum(len(r["Body"].decode().splitlines()) for r in self.requests[:-1])
        predictions = [{"dot_product": -float(offset + i)} for i in range(len(lines))]
        queue = sagemakerruntime_backends[DEFAULT_ACCOUNT_ID][REGION].results_queue
        queue.append((json.dumps({"predictions": predictions}), "application/json", "v", ""))


def pairs(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "principal": [f"AIDA{i % 37:016d}" for i in range(n)],
            "ip": [f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in range(n)],
        }
    )


def tags_of(sm, arn: str) -> dict:
    return {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]}


def nothing_billing(sm) -> bool:
    return (
        sm.list_endpoints()["Endpoints"] == []
        and sm.list_endpoint_configs()["EndpointConfigs"] == []
        and sm.list_models()["Models"] == []
    )


def trained(wh, aws):
    ipinsights = backend(wh, aws)
    training = pd.concat([pairs(40), pd.DataFrame({"principal": ["a"], "ip": ["2001:db8::1"]})])
    ipinsights.train(training, HYPERPARAMETERS)
    return ipinsights


def test_the_image_is_the_sdks_regional_ipinsights_image(wh, aws):
    assert backend(wh, aws).image_uri == "174872318107.dkr.ecr.us-west-2.amazonaws.com/ipinsights:1"


def test_resource_names_are_prefixed_unique_and_valid(wh):
    names = {wh.resource_name("ipinsights") for _ in range(50)}
    assert len(names) == 50
    for name in names:
        assert name.startswith("secml-ipinsights-")
        assert len(name) <= 63 - len("-config")  # the endpoint config adds a suffix
        assert all(c.isalnum() or c == "-" for c in name)
        assert len(name.rsplit("-", 1)[1]) >= 8  # random part: same-second names must not collide


def test_model_trainer_runs_the_built_in_on_the_ipv4_tuples(wh, aws, capsys):
    session, role_arn = aws
    ipinsights = trained(wh, aws)
    sm, s3 = session.client("sagemaker"), session.client("s3")
    job = sm.describe_training_job(TrainingJobName=ipinsights.job_name)
    assert job["TrainingJobName"].startswith("secml-ipinsights-")
    assert job["AlgorithmSpecification"]["TrainingImage"].endswith("/ipinsights:1")
    assert job["RoleArn"] == role_arn
    assert job["HyperParameters"] == {k: str(v) for k, v in HYPERPARAMETERS.items()}
    (channel,) = job["InputDataConfig"]
    assert channel["ChannelName"] == "train"
    assert channel["ContentType"] == "text/csv"
    bucket, key = channel["DataSource"]["S3DataSource"]["S3Uri"][5:].split("/", 1)
    assert bucket == BUCKET and key.startswith("ipinsights/")
    sent = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
    assert len(sent) == 40 and sent[0] == "AIDA0000000000000000,10.0.0.0"  # no header, no IPv6
    assert job["ResourceConfig"]["InstanceType"] == "ml.m5.large"
    assert job["OutputDataConfig"]["S3OutputPath"] == f"s3://{BUCKET}/ipinsights/output"
    assert ipinsights.model_data_uri == job["ModelArtifacts"]["S3ModelArtifacts"]
    assert tags_of(sm, job["TrainingJobArn"])["secml:stack"] == "SecmlWorkshop"
    # no SDK default bucket (sagemaker-<region>-<account>): the notebook role may not create one
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [BUCKET]
    out = capsys.readouterr().out
    assert "IPv6 tuples left out for the built-in: 1" in out
    assert "training:  0 min 00 s  Completed  (Completed)" in out  # status, secondary status


def test_every_poll_prints_elapsed_time_status_and_detail(wh, capsys):
    """Never silent: an attendee sees each poll of a five-minute wait."""
    answers = iter([("InProgress", "Starting"), ("InProgress", "Training"), ("Completed", "")])
    now = iter([0, 0, 30, 61])
    status = wh.wait_until(
        "training",
        lambda: next(answers),
        ("Completed",),
        clock=lambda: next(now),
        sleep=lambda s: None,
    )
    assert status == "Completed"
    assert capsys.readouterr().out.splitlines() == [
        "training:  0 min 00 s  InProgress  (Starting)",
        "training:  0 min 30 s  InProgress  (Training)",
        "training:  1 min 01 s  Completed",
    ]


def test_a_wait_that_never_ends_times_out_loudly(wh):
    now = iter(range(0, 10_000, 100))
    with pytest.raises(TimeoutError, match="still Creating"):
        wh.wait_until(
            "endpoint",
            lambda: ("Creating", ""),
            ("InService",),
            timeout_seconds=300,
            clock=lambda: next(now),
            sleep=lambda s: None,
        )


def test_endpoint_lifecycle_chunks_under_6mb_and_deletes_everything(wh, aws, capsys):
    session, role_arn = aws
    endpoint = FakeIPInsightsEndpoint(session)
    sm = session.client("sagemaker")
    ipinsights = trained(wh, aws)
    data = pairs(12_345)
    with ipinsights.deployed():
        name = ipinsights.endpoint.endpoint_name
        described = sm.describe_endpoint(EndpointName=name)
        assert described["EndpointStatus"] == "InService"
        config = sm.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
        (variant,) = config["ProductionVariants"]
        assert variant["InstanceType"] == "ml.m5.large"
        model = sm.describe_model(ModelName=variant["ModelName"])
        assert model["PrimaryContainer"]["Image"].endswith("/ipinsights:1")
        assert model["PrimaryContainer"]["ModelDataUrl"] == ipinsights.model_data_uri
        assert model["ExecutionRoleArn"] == role_arn
        for arn in (described["EndpointArn"], config["EndpointConfigArn"], model["ModelArn"]):
            assert tags_of(sm, arn)["secml:stack"] == "SecmlWorkshop"
        for resource in (name, variant["ModelName"], described["EndpointConfigName"]):
            assert resource.startswith("secml-")
        assert ipinsights.endpoints_still_there() == [f"{name} (InService)"]
        scores = ipinsights.score(data)

    np.testing.assert_array_equal(scores, -np.arange(len(data), dtype=float))  # all, in order
    assert len(endpoint.requests) == 3  # 12,345 rows in chunks of at most 5,000
    for request in endpoint.requests:
        assert request["EndpointName"] == name
        assert request["ContentType"] == "text/csv"
        assert request["Accept"] == "application/json"
        assert len(request["Body"]) < SIX_MB
    sent = b"".join(r["Body"] for r in endpoint.requests).decode().splitlines()
    assert sent[0] == f"{data.principal[0]},{data.ip[0]}"  # no header row
    assert len(sent) == len(data)
    assert nothing_billing(sm)  # the with block deleted what bills by the hour
    assert ipinsights.created == [] and ipinsights.endpoints_still_there() == []
    assert "endpoint:  0 min 00 s  InService" in capsys.readouterr().out


def test_ipv6_tuples_are_not_sent_and_get_no_score(wh, aws):
    session, _ = aws
    endpoint = FakeIPInsightsEndpoint(session)
    ipinsights = trained(wh, aws)
    data = pd.DataFrame(
        {"principal": ["a", "b", "c"], "ip": ["192.0.2.1", "2001:db8::1", "10.0.0.1"]}
    )
    with ipinsights.deployed():
        scores = ipinsights.score(data)
    assert np.isnan(scores[1]) and scores[0] == 0.0 and scores[2] == -1.0
    assert endpoint.requests[0]["Body"] == b"a,192.0.2.1\nc,10.0.0.1\n"


def test_endpoint_is_deleted_when_scoring_fails(wh, aws):
    session, _ = aws
    sm = session.client("sagemaker")
    ipinsights = trained(wh, aws)
    with pytest.raises(RuntimeError, match="scoring failed"), ipinsights.deployed():
        assert len(sm.list_endpoints()["Endpoints"]) == 1
        raise RuntimeError("scoring failed")
    assert nothing_billing(sm)


def test_cleanup_is_idempotent_and_tolerates_resources_already_gone(wh, aws):
    session, _ = aws
    ipinsights = trained(wh, aws)
    with ipinsights.deployed():
        gone = list(ipinsights.created)
        session.client("sagemaker").delete_endpoint(EndpointName=ipinsights.endpoint.endpoint_name)
    assert [type(r).__name__ for r in gone] == ["Model", "EndpointConfig", "Endpoint"]
    assert ipinsights.created == []
    ipinsights.created.extend(gone[-1:])  # as if the endpoint were still recorded
    assert [outcome for _, _, outcome in ipinsights.cleanup()] == ["already gone"]
    assert ipinsights.cleanup() == []


# The name parameter of each Delete* the notebook makes.
DELETES = {
    "DeleteEndpoint": "EndpointName",
    "DeleteEndpointConfig": "EndpointConfigName",
    "DeleteModel": "ModelName",
}


def _access_denied(operation: str) -> tuple:
    message = (
        f"User: arn:aws:sts::123456789012:assumed-role/notebook/SageMaker is not authorized to "
        f"perform: sagemaker:{operation} because no identity-based policy allows it"
    )
    error = {"Code": "AccessDeniedException", "Message": message}
    return type("R", (), {"status_code": 400})(), {"Error": error, "ResponseMetadata": {}}


def deletes_need_the_stack_tag(session, *, refuse_all: bool = False, race: bool = False):
    """Answer the notebook's Delete* calls as AWS does under its role (stacks/notebook.py):
    allowed only when the resource carries the stack tag, so a resource that is gone (no tag
    to read) gets AccessDenied instead of moto's "Could not find". With race=True the resource
    is deleted just before the call is refused (a delete that went through, then was retried);
    with refuse_all=True every delete is refused (a resource without the tag)."""
    plain = boto3.client("sagemaker", region_name=REGION)  # no hooks: moto as it is
    refused: list[str] = []

    def answer(model, params, **_):
        name = json.loads(params["body"])[DELETES[model.name]]
        if race:
            getattr(plain, _snake(model.name))(**{DELETES[model.name]: name})
        describe = getattr(plain, _snake(model.name).replace("delete_", "describe_"))
        try:
            describe(**{DELETES[model.name]: name})
        except ClientError:
            refused.append(f"{model.name} {name}")
            return _access_denied(model.name)
        if refuse_all:
            refused.append(f"{model.name} {name}")
            return _access_denied(model.name)
        return None

    for operation in DELETES:
        session.events.register(f"before-call.sagemaker.{operation}", answer)
    return refused


def _snake(operation: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")


def test_deleting_what_is_already_gone_is_quiet_under_tag_conditioned_deletes(wh, aws, capsys):
    """Endpoint deleted behind the notebook's back (facilitator, console), then the with
    block's cleanup, then the kernel-exit hook over everything again: "already gone", no error.
    """
    session, _ = aws
    refused = deletes_need_the_stack_tag(session)
    sm = session.client("sagemaker")
    ipinsights = trained(wh, aws)
    with ipinsights.deployed():
        gone = list(ipinsights.created)
        sm.delete_endpoint(EndpointName=ipinsights.endpoint.endpoint_name)
    assert nothing_billing(sm)
    for resource in gone:  # as if all three were still recorded when the kernel exits
        ipinsights._remember(resource)
    wh._cleanup_at_exit()
    out = capsys.readouterr().out
    assert "FAILED" not in out and "AccessDenied" not in out
    assert out.count("already gone") == 4  # the endpoint once, then all three again
    assert refused == []  # never asked to delete what Describe said was gone
    assert ipinsights.created == [] and ipinsights not in wh._LIVE


def test_a_delete_refused_because_the_resource_just_went_is_already_gone(wh, aws, capsys):
    session, _ = aws
    refused = deletes_need_the_stack_tag(session, race=True)
    ipinsights = trained(wh, aws)
    with ipinsights.deployed():
        pass
    assert len(refused) == 3
    assert [o for _, _, o in ipinsights.cleanup()] == []
    out = capsys.readouterr().out
    assert "FAILED" not in out
    assert out.count("already gone") == 3
    assert nothing_billing(session.client("sagemaker"))


def test_a_delete_refused_while_the_resource_exists_is_still_reported(wh, aws, capsys):
    session, _ = aws
    refused = deletes_need_the_stack_tag(session, refuse_all=True)
    ipinsights = trained(wh, aws)
    with ipinsights.deployed():
        pass
    out = capsys.readouterr().out
    assert len(refused) == 3
    assert out.count("FAILED") == 3 and "AccessDenied" in out
    assert len(session.client("sagemaker").list_models()["Models"]) == 1


def test_a_wrong_prediction_count_is_an_error_not_a_silent_misalignment(wh, aws):
    ipinsights = trained(wh, aws)
    queue = sagemakerruntime_backends[DEFAULT_ACCOUNT_ID][REGION].results_queue
    with pytest.raises(RuntimeError, match="sent 2 tuples, got 1"), ipinsights.deployed():
        queue.append(
            (json.dumps({"predictions": [{"dot_product": 1.0}]}), "application/json", "v", "")
        )
        ipinsights.score(pairs(2))


def test_request_bodies_respect_the_byte_limit(wh):
    data = pd.DataFrame({"principal": ["A" * 1000] * 50, "ip": ["192.0.2.1"] * 50})
    chunks = list(wh.csv_request_bodies(data, max_bytes=10_000, max_rows=1_000))
    assert sum(rows for rows, _ in chunks) == 50
    assert all(len(body) <= 10_000 for _, body in chunks)
    assert all(body.count(b"\n") == rows for rows, body in chunks)
    assert len(chunks) == 6  # 9 lines of 1,011 bytes fit in 10,000


def test_an_endpoint_still_being_created_is_deleted_once_it_settles(wh, aws):
    """Interrupting the scoring cell while the endpoint is Creating must not leak it."""
    session, _ = aws
    refusals = []

    def refuse_first_delete(**_):
        if refusals:
            return None  # the second attempt goes to moto
        refusals.append(1)
        error = {"Code": "ValidationException", "Message": "Endpoint is in Creating status"}
        return type("R", (), {"status_code": 400})(), {"Error": error, "ResponseMetadata": {}}

    session.events.register("before-call.sagemaker.DeleteEndpoint", refuse_first_delete)
    ipinsights = trained(wh, aws)
    with ipinsights.deployed():
        pass
    assert refusals == [1]
    assert nothing_billing(session.client("sagemaker"))


def test_moto_still_lacks_what_the_fixture_patches(wh, monkeypatch):
    """Each patch in patch_moto_gaps answers a real gap; when this fails, drop the patch."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    from sagemaker.core.resources import Model
    from sagemaker.core.shapes import ContainerDefinition

    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        with pytest.raises(NotImplementedError, match="simulate_principal_policy"):
            session.client("iam").simulate_principal_policy(
                PolicySourceArn=create_notebook_role(session), ActionNames=["s3:GetObject"]
            )
        with pytest.raises(Exception, match="vpc_config"):
            Model.create(
                model_name="secml-m",
                primary_container=ContainerDefinition(image="x"),
                execution_role_arn="arn:aws:iam::123456789012:role/secml-notebook",
                session=session,
            )


def test_a_kernel_without_the_sdk_v3_gets_one_clear_line(wh, monkeypatch):
    """conda_python3 on a notebook instance has the SDK v2, which has no sagemaker.core."""
    monkeypatch.setitem(sys.modules, "sagemaker.core", None)
    with pytest.raises(RuntimeError, match=r"choose the kernel 'secml \(SageMaker SDK v3\)'"):
        wh.SageMakerIPInsights({"region": REGION, "tuples_bucket": BUCKET, "stack_name": "S"})
