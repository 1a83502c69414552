"""The notebook's optional last step: its model, with its threshold, sent to the detection Lambda.

`wh.send_model_to_detection` exports the `local` backend's model to the key the detection
construct reads; the Lambda's own reader (CompactModel) must score as the notebook did. The
`sagemaker` backend's model cannot be exported: one printed line says what to do instead.
"""

from __future__ import annotations

import boto3
import pandas as pd
import pytest
from moto import mock_aws

from lambda_src.detection_scoring.compact_model import CompactModel
from tests.notebook_cells import create_notebook_role, load_helpers, patch_moto_gaps

TRAIN = pd.DataFrame(
    [(f"user{u}", f"10.{u}.{i % 7}.{i}") for u in range(5) for i in range(40)],
    columns=["principal", "ip"],
)
PROBES = pd.DataFrame(
    [
        ("user0", "10.0.1.1"),  # seen
        ("user0", "10.3.2.8"),  # another principal's network
        ("user2", "203.0.113.9"),  # nobody's network
        ("stranger", "10.0.1.1"),  # principal never seen
    ],
    columns=["principal", "ip"],
)
HYPERPARAMETERS = {"num_entity_vectors": 20, "vector_dim": 8, "epochs": 2}
RULE = "percentile 1 of 20 held-out scores"


@pytest.fixture(scope="module")
def wh():
    return load_helpers()


@pytest.fixture(scope="module")
def trained(wh):
    ipinsights = wh.LocalIPInsights()
    ipinsights.train(TRAIN, HYPERPARAMETERS)
    return ipinsights


@pytest.fixture
def bucket(fleet_aws):
    boto3.client("s3").create_bucket(
        Bucket="tuples", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    return "tuples"


def objects(bucket: str) -> list[str]:
    return [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_the_key_is_the_one_the_detection_construct_reads(wh):
    from stacks.detection import MODEL_KEY

    assert wh.DETECTION_MODEL_KEY == MODEL_KEY


def test_local_model_goes_to_the_detection_key_and_scores_as_in_the_notebook(
    wh, trained, bucket, capsys, monkeypatch
):
    monkeypatch.delenv("SECML_DETECTION_MODEL_URI", raising=False)
    uri = f"s3://{bucket}/{wh.DETECTION_MODEL_KEY}"
    sent = wh.send_model_to_detection(
        trained, TRAIN, -0.75, {"detection_model_uri": uri}, threshold_rule=RULE
    )
    assert sent == uri
    assert objects(bucket) == [wh.DETECTION_MODEL_KEY]
    body = boto3.client("s3").get_object(Bucket=bucket, Key=wh.DETECTION_MODEL_KEY)["Body"]
    compact = CompactModel.from_bytes(body.read())
    assert compact.threshold == -0.75
    assert compact.meta["threshold_rule"] == RULE
    assert compact.meta["training_pairs"] == len(TRAIN)
    expected = trained.score(PROBES)
    got = [compact.score(p, ip).score for p, ip in PROBES.itertuples(index=False, name=None)]
    assert got == pytest.approx(list(expected), abs=1e-5)
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("detection: model (0.0")  # a few kB
    assert last.endswith(f"threshold -0.750) sent to {uri}")


def test_a_file_named_by_the_environment_serves_secml_detect(wh, trained, tmp_path, monkeypatch):
    target = tmp_path / "model.zip"
    monkeypatch.setenv("SECML_DETECTION_MODEL_URI", str(target))
    assert wh.send_model_to_detection(trained, TRAIN, 0.5, {}) == str(target)
    compact = CompactModel.from_bytes(target.read_bytes())
    assert compact.threshold == 0.5
    assert compact.meta["threshold_rule"] == "given"


def test_without_detection_nothing_is_sent_and_it_says_so(wh, trained, capsys, monkeypatch):
    monkeypatch.delenv("SECML_DETECTION_MODEL_URI", raising=False)
    config = {"stack_name": "S", "tuples_bucket": "tuples"}  # a workshop config: no detection
    assert wh.send_model_to_detection(trained, TRAIN, 0.5, config) is None
    assert capsys.readouterr().out == (
        "detection: not deployed for this notebook (no DetectionModelUri): nothing sent\n"
    )


def test_a_failed_upload_is_one_line_not_a_traceback(wh, trained, bucket, capsys):
    config = {"detection_model_uri": "s3://no-such-bucket/model/ipinsights-detection.zip"}
    assert wh.send_model_to_detection(trained, TRAIN, 0.5, config) is None
    out = capsys.readouterr().out
    assert out.startswith("detection: model not sent: writing s3://no-such-bucket/")
    assert "NoSuchBucket" in out and out.count("\n") == 1


def test_the_sagemaker_backend_says_how_to_get_a_model_and_writes_nothing(wh, capsys, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        session = boto3.session.Session(region_name="us-west-2")
        patch_moto_gaps(session)
        s3 = session.client("s3")
        s3.create_bucket(
            Bucket="secml-tuples", CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
        )
        config = {
            "region": "us-west-2",
            "tuples_bucket": "secml-tuples",
            "stack_name": "SecmlWorkshop",
            "role_arn": create_notebook_role(session),
            "detection_model_uri": "s3://secml-tuples/model/ipinsights-detection.zip",
        }
        backend = wh.SageMakerIPInsights(config, boto_session=session, poll_seconds=0)
        capsys.readouterr()
        assert wh.send_model_to_detection(backend, TRAIN, 0.5, config) is None
        assert s3.list_objects_v2(Bucket="secml-tuples").get("Contents", []) == []
    (line,) = capsys.readouterr().out.splitlines()
    assert "cannot be exported" in line
    assert "`python -m secml train`" in line
    assert (
        "`python -m secml export-model --out s3://secml-tuples/model/ipinsights-detection.zip`"
        in (line)
    )
