"""The scoring handler against moto (S3, SNS, Security Hub), the rule pattern, model refresh."""

from __future__ import annotations

import copy
import json

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from lambda_src.detection_scoring import index
from secml import detect
from secml.ipinsights import IPInsights
from secml.ipinsights.data import load_pairs
from secml.ipinsights.export import export_model

BUCKET = "tuples"
KEY = "model/ipinsights-detection.zip"
ARN = "arn:aws:lambda:us-east-1:123456789012:function:scoring"
# Principal AIDAALICE works from 10.1.x.x; the finding's caller is elsewhere.
TRAIN = [("AIDAALICE", f"10.1.{i % 5}.{i}") for i in range(60)] + [
    ("AIDABOB", f"10.2.{i % 5}.{i}") for i in range(60)
]


class Context:
    invoked_function_arn = ARN


def finding(principal="AIDAALICE", ip="198.51.100.7", *, sample=False) -> dict:
    """A GuardDuty finding as GetFindings returns it (PascalCase)."""
    info = {"Value": json.dumps({"sample": True}), "Type": "default"} if sample else {}
    return {
        "AccountId": "123456789012",
        "Region": "us-east-1",
        "Id": f"f-{principal}-{ip}",
        "Type": "UnauthorizedAccess:IAMUser/ConsoleLoginSuccess.B",
        "Resource": {
            "ResourceType": "AccessKey",
            "AccessKeyDetails": {"AccessKeyId": "AKIAEXAMPLE", "PrincipalId": principal},
        },
        "Service": {
            "AdditionalInfo": info,
            "Action": {
                "ActionType": "AWS_API_CALL",
                "AwsApiCallAction": {"Api": "ConsoleLogin", "RemoteIpDetails": {"IpAddressV4": ip}},
            },
        },
    }


@pytest.fixture(scope="module")
def artifacts() -> dict[str, bytes]:
    pairs = load_pairs(TRAIN, what="train")
    model = IPInsights(num_entity_vectors=10, vector_dim=8, epochs=3, seed=0)
    model.fit(pairs, progress=False)
    # Thresholds given, so each test decides what alerts (what scores low is the end-to-end
    # test's subject, on the workshop dataset).
    return {
        "alert_nothing": export_model(model, pairs, threshold=-1e9),
        "alert_everything": export_model(model, pairs, threshold=1e9),
    }


@pytest.fixture
def aws(monkeypatch):
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        sns, sqs = boto3.client("sns"), boto3.client("sqs")
        topic = sns.create_topic(Name="alerts")["TopicArn"]
        queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
        monkeypatch.setenv("MODEL_BUCKET", BUCKET)
        monkeypatch.setenv("MODEL_KEY", KEY)
        monkeypatch.setenv("TOPIC_ARN", topic)
        index._MODEL.update(etag=None, model=None, loads=0)

        def inbox() -> list[dict]:
            got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
            for m in got.get("Messages", []):
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
            return [json.loads(m["Body"]) for m in got.get("Messages", [])]

        yield s3, inbox


def put_model(s3, data: bytes) -> None:
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=data)


def test_an_anomalous_pair_sends_one_alert_that_says_everything(aws, artifacts):
    s3, inbox = aws
    put_model(s3, artifacts["alert_everything"])
    boto3.client("securityhub").enable_security_hub()
    result = index.handler(detect.eventbridge_event(finding()), Context())
    assert result["alerts"] == 1
    assert result["securityhub"] == "imported"
    (message,) = inbox()
    body = message["Message"]
    score = result["pairs"][0]["score"]
    assert score < result["threshold"]
    for text in (
        "f-AIDAALICE-198.51.100.7",  # the finding
        "UnauthorizedAccess:IAMUser/ConsoleLoginSuccess.B",
        "principal: AIDAALICE",
        "address:   198.51.100.7",
        f"score:     {score:.4f}",
        f"threshold: {result['threshold']:.4f}",
        "why:       principal never used 198.51.0.0/16 in training (nor did anyone)",
    ):
        assert text in body
    assert message["Subject"].startswith("Anomalous access: AIDAALICE from 198.51.100.7")


def test_security_hub_gets_an_asff_finding_whose_id_survives_a_retry(aws, artifacts):
    s3, inbox = aws
    put_model(s3, artifacts["alert_everything"])
    hub = boto3.client("securityhub")
    hub.enable_security_hub()
    event = detect.eventbridge_event(finding())
    index.handler(event, Context())
    index.handler(event, Context())  # a retry: updates, does not add
    (imported,) = hub.get_findings()["Findings"]
    assert imported["ProductArn"] == (
        "arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default"
    )
    assert imported["AwsAccountId"] == "123456789012"
    assert imported["Resources"][0]["Id"] == "AKIAEXAMPLE"
    assert imported["Network"]["SourceIpV4"] == "198.51.100.7"
    assert imported["ProductFields"]["secml/Why"].startswith("principal never used 198.51.0.0/16")
    assert len(inbox()) == 2  # SNS is not idempotent: one message per successful run


def test_without_security_hub_the_sns_alert_still_goes(aws, artifacts, monkeypatch):
    s3, inbox = aws
    put_model(s3, artifacts["alert_everything"])
    # moto's BatchImportFindings does not check that Security Hub is enabled; AWS answers
    # InvalidAccessException ("Account is not subscribed to AWS Security Hub").
    client = boto3.client("securityhub")
    stub = Stubber(client)
    stub.add_client_error(
        "batch_import_findings",
        service_error_code="InvalidAccessException",
        service_message="Account is not subscribed to AWS Security Hub",
    )
    real_client = boto3.client
    monkeypatch.setattr(
        index.boto3,
        "client",
        lambda name, *a, **k: client if name == "securityhub" else real_client(name, *a, **k),
    )
    with stub:
        result = index.handler(detect.eventbridge_event(finding()), Context())
    assert result["securityhub"] == "not-enabled"
    assert len(inbox()) == 1


def test_a_normal_pair_sends_nothing(aws, artifacts):
    s3, inbox = aws
    put_model(s3, artifacts["alert_nothing"])
    result = index.handler(detect.eventbridge_event(finding(ip="10.1.2.3")), Context())
    assert result["alerts"] == 0 and result["pairs"][0]["below"] is False
    assert inbox() == []


@pytest.mark.parametrize(
    "change,reason",
    [
        (
            lambda f: f["Service"]["AdditionalInfo"].update(Value='{"sample": true}'),
            "sample-finding",
        ),
        (lambda f: f["Resource"].pop("AccessKeyDetails"), "no-principal-or-address"),
        (
            lambda f: f["Service"]["Action"]["AwsApiCallAction"]["RemoteIpDetails"].update(
                IpAddressV4="AWS Internal"
            ),
            "no-principal-or-address",
        ),
    ],
)
def test_findings_without_a_usable_pair_are_skipped_and_say_why(aws, artifacts, change, reason):
    s3, inbox = aws
    put_model(s3, artifacts["alert_everything"])
    broken = finding()
    change(broken)
    result = index.handler(detect.eventbridge_event(broken), Context())
    assert result["skipped"] == reason and result["alerts"] == 0
    assert inbox() == []


def test_ipv6_is_skipped_when_the_model_saw_none(aws, artifacts):
    s3, _ = aws
    put_model(s3, artifacts["alert_everything"])
    v6 = finding()
    details = v6["Service"]["Action"]["AwsApiCallAction"]["RemoteIpDetails"]
    details.pop("IpAddressV4")
    details["IpAddressV6"] = "2001:db8::5"
    result = index.handler(detect.eventbridge_event(v6), Context())
    assert result["skipped"] == "ipv6-address-model-trained-on-ipv4-only"


def test_model_refresh_a_new_object_under_the_same_key_is_used_without_redeploy(aws, artifacts):
    s3, inbox = aws
    event = detect.eventbridge_event(finding())
    put_model(s3, artifacts["alert_nothing"])
    assert index.handler(event, Context())["alerts"] == 0
    assert index.handler(event, Context())["alerts"] == 0
    assert index._MODEL["loads"] == 1  # unchanged ETag: not read again
    put_model(s3, artifacts["alert_everything"])  # retrained, uploaded to the fixed key
    assert index.handler(event, Context())["alerts"] == 1
    assert index._MODEL["loads"] == 2


def test_no_model_yet_fails_so_the_event_is_retried_and_kept(aws):
    with pytest.raises(index.ModelMissing, match="secml export-model"):
        index.handler(detect.eventbridge_event(finding()), Context())


def test_a_missing_model_without_list_permission_is_a_403_and_reads_the_same():
    s3 = boto3.client("s3", region_name="us-east-1")
    stub = Stubber(s3)
    stub.add_client_error("head_object", service_error_code="403", http_status_code=403)
    with stub, pytest.raises(index.ModelMissing, match="no read access"):
        index.current_model(s3, BUCKET, KEY)


def test_an_event_without_detail_is_ignored(aws, artifacts):
    assert index.handler({"source": "x"}, Context())["skipped"] == "not-an-event"


# ------------------------------------------------------------------------------ the pattern
def test_the_pattern_matches_access_key_findings_from_api_calls_and_console_logins():
    pattern = detect.event_pattern()
    assert detect.pattern_matches(pattern, detect.eventbridge_event(finding()))
    api_call = finding()
    api_call["Service"]["Action"]["AwsApiCallAction"]["Api"] = "ListUsers"
    api_call["Resource"]["ResourceType"] = "S3Bucket"  # S3 findings name the caller's key too
    assert detect.pattern_matches(pattern, detect.eventbridge_event(api_call))


def test_the_pattern_refuses_what_cannot_carry_a_pair():
    pattern = detect.event_pattern()
    ec2 = finding()
    ec2["Resource"] = {"ResourceType": "Instance", "InstanceDetails": {"InstanceId": "i-1"}}
    ec2["Service"]["Action"] = {"ActionType": "PORT_PROBE", "PortProbeAction": {}}
    assert not detect.pattern_matches(pattern, detect.eventbridge_event(ec2))
    dns = finding()
    dns["Service"]["Action"] = {"ActionType": "DNS_REQUEST"}
    assert not detect.pattern_matches(pattern, detect.eventbridge_event(dns))
    other_source = detect.eventbridge_event(finding())
    other_source["source"] = "aws.securityhub"
    assert not detect.pattern_matches(pattern, other_source)
    pascal = detect.eventbridge_event(finding())
    pascal["detail"] = copy.deepcopy(finding())  # EventBridge events are camelCase
    assert not detect.pattern_matches(pattern, pascal)
