"""The exported model: the Lambda's pure-Python scores are the local engine's, threshold inside."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from lambda_src.detection_scoring import compact_model
from lambda_src.detection_scoring.compact_model import CompactModel, ModelError
from secml.errors import SecmlError
from secml.ipinsights import IPInsights
from secml.ipinsights.data import load_pairs
from secml.ipinsights.export import export_model, network_of, write_artifact

TRAIN = [(f"user{u}", f"10.{u}.{i % 7}.{i}") for u in range(6) for i in range(40)] + [
    ("user0", "2001:db8::1"),
    ("user1", "2001:db8:1::5"),
]
PROBES = [
    ("user0", "10.0.1.1"),  # seen
    ("user0", "10.3.2.8"),  # another principal's network
    ("user2", "203.0.113.9"),  # nobody's network
    ("stranger", "10.0.1.1"),  # principal never seen
    ("user1", "2001:db8:1::5"),  # IPv6
    ("user1", "::ffff:10.1.2.3"),  # IPv4-mapped IPv6 counts as IPv4
]


def _trained(encoder: str, layers: int) -> tuple[IPInsights, object]:
    pairs = load_pairs(TRAIN, what="train")
    model = IPInsights(
        num_entity_vectors=50,
        vector_dim=8,
        epochs=2,
        ip_encoder=encoder,
        num_ip_encoder_layers=layers,
        seed=1,
    )
    model.fit(pairs, progress=False)
    return model, pairs


@pytest.mark.parametrize(
    "encoder,layers", [("prefix", 1), ("prefix", 2), ("hashed", 1), ("octet", 0)]
)
def test_pure_python_scores_equal_the_engine_scores(encoder, layers):
    model, pairs = _trained(encoder, layers)
    compact = CompactModel.from_bytes(export_model(model, pairs))
    expected = model.score([p for p, _ in PROBES], [ip for _, ip in PROBES])
    got = [compact.score(p, ip).score for p, ip in PROBES]
    assert got == pytest.approx(list(expected), abs=1e-5)
    assert [compact.score(p, ip).known_principal for p, ip in PROBES] == [
        True,
        True,
        True,
        False,
        True,
        True,
    ]


def test_threshold_travels_with_the_model_given_or_from_the_training_percentile():
    model, pairs = _trained("prefix", 1)
    given = CompactModel.from_bytes(export_model(model, pairs, threshold=-1.25))
    assert given.threshold == -1.25
    scores = sorted(model.score(list(pairs.entities), list(pairs.ip_texts)))
    default = CompactModel.from_bytes(export_model(model, pairs, threshold_percentile=10))
    assert scores[0] < default.threshold < scores[-1]
    assert default.meta["threshold_rule"].startswith("percentile 10 ")
    assert default.ipv4_only is False  # IPv6 was in training


def test_artifact_keeps_only_the_training_principals_rows():
    model, pairs = _trained("prefix", 1)
    data = export_model(model, pairs)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        meta = json.loads(archive.read("model.json"))
        vectors = archive.getinfo("entity_vectors.f32").file_size
    assert meta["entities"] == 6
    assert vectors == 6 * 8 * 4  # not num_entity_vectors (50) rows
    assert meta["principal_networks"]["user0"] == ["10.0.0.0/16", "2001:db8::/32"]


def test_explanations_say_why():
    model, pairs = _trained("prefix", 1)
    compact = CompactModel.from_bytes(export_model(model, pairs))
    why = [compact.explain(compact.score(p, ip)) for p, ip in PROBES[:4]]
    assert why[0].startswith("principal used 10.0.0.0/16 in training")
    assert why[1] == "principal never used 10.3.0.0/16 in training (other principals did)"
    assert why[2] == "principal never used 203.0.0.0/16 in training (nor did anyone)"
    assert why[3].startswith("principal never seen in training")


@pytest.mark.parametrize("ip", ["10.1.2.3", "2001:db8:aa::1", "::ffff:192.0.2.1", "fe80::1"])
def test_the_lambda_and_the_exporter_name_networks_alike(ip):
    assert compact_model.network_of(ip) == network_of(ip)


@pytest.mark.parametrize(
    "data,message",
    [
        (b"not a zip", "cannot read"),
        (zipfile.ZipFile, "not a secml-ipinsights-compact"),
    ],
)
def test_a_bad_artifact_is_one_clear_error(data, message):
    if data is zipfile.ZipFile:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("model.json", json.dumps({"format": "other", "version": 1}))
        data = buffer.getvalue()
    with pytest.raises(ModelError, match=message):
        CompactModel.from_bytes(data)


def test_write_artifact_refuses_a_folder_and_a_bucket_without_key(tmp_path):
    with pytest.raises(SecmlError, match="folder"):
        write_artifact(b"x", tmp_path)
    with pytest.raises(SecmlError, match="s3://bucket/key"):
        write_artifact(b"x", "s3://bucket-only")
    target = write_artifact(b"abc", tmp_path / "m" / "model.zip")
    assert (tmp_path / "m" / "model.zip").read_bytes() == b"abc"
    assert target.endswith("model.zip")


def test_write_artifact_to_s3_puts_one_object_and_reports_a_missing_bucket(fleet_aws):
    import boto3

    boto3.client("s3").create_bucket(
        Bucket="tuples", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    assert write_artifact(b"zip", "s3://tuples/model/m.zip") == "s3://tuples/model/m.zip"
    body = boto3.client("s3").get_object(Bucket="tuples", Key="model/m.zip")["Body"].read()
    assert body == b"zip"
    with pytest.raises(SecmlError, match="writing s3://nope/m.zip: .*NoSuchBucket"):
        write_artifact(b"zip", "s3://nope/m.zip")
