"""lambda_src/guardduty_detector against moto (Stubber only for CreateSampleFindings)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from tests.handler_support import load_handler

detector = load_handler("guardduty_detector")
REGION = "us-west-2"


@pytest.fixture
def guardduty(monkeypatch):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        yield boto3.client("guardduty", region_name=REGION)


def _create(sample_findings: str = "false") -> dict:
    return {
        "RequestType": "Create",
        "ResourceProperties": {"SampleFindings": sample_findings, "Tags": {"secml:stack": "T"}},
    }


def _delete(physical_id: str) -> dict:
    return {"RequestType": "Delete", "PhysicalResourceId": physical_id, "ResourceProperties": {}}


def test_creates_a_detector_when_none_exists_and_deletes_it_again(guardduty):
    result = detector.handle(_create(), guardduty)
    ids = guardduty.list_detectors()["DetectorIds"]
    assert ids == [result["Data"]["DetectorId"]]
    assert result["Data"]["CreatedByStack"] == "true"
    assert result["PhysicalResourceId"] == f"created:{ids[0]}"
    assert guardduty.get_detector(DetectorId=ids[0])["Tags"] == {"secml:stack": "T"}

    detector.handle(_delete(result["PhysicalResourceId"]), guardduty)
    assert guardduty.list_detectors()["DetectorIds"] == []


def test_uses_an_existing_detector_and_leaves_it_on_delete(guardduty):
    existing = guardduty.create_detector(Enable=True)["DetectorId"]
    result = detector.handle(_create(), guardduty)
    assert result["Data"] == {"DetectorId": existing, "CreatedByStack": "false"}
    assert result["PhysicalResourceId"] == f"existing:{existing}"

    detector.handle(_delete(result["PhysicalResourceId"]), guardduty)
    assert guardduty.list_detectors()["DetectorIds"] == [existing]


def test_delete_tolerates_a_detector_already_gone(guardduty):
    result = detector.handle(_create(), guardduty)
    guardduty.delete_detector(DetectorId=result["Data"]["DetectorId"])
    assert detector.handle(_delete(result["PhysicalResourceId"]), guardduty) == {
        "PhysicalResourceId": result["PhysicalResourceId"]
    }


def test_update_keeps_the_detector_and_returns_its_attributes(guardduty):
    created = detector.handle(_create(), guardduty)
    update = {
        "RequestType": "Update",
        "PhysicalResourceId": created["PhysicalResourceId"],
        "ResourceProperties": {"SampleFindings": "false"},
        "OldResourceProperties": {"SampleFindings": "false"},
    }
    assert detector.handle(update, guardduty) == created


def test_create_generates_sample_findings_when_asked():
    # moto has no CreateSampleFindings: the whole conversation is stubbed here.
    client = boto3.client(
        "guardduty", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stub:
        stub.add_response("list_detectors", {"DetectorIds": []})
        stub.add_response(
            "create_detector",
            {"DetectorId": "d1"},
            {
                "Enable": True,
                "FindingPublishingFrequency": "FIFTEEN_MINUTES",
                "Tags": {"secml:stack": "T"},
            },
        )
        stub.add_response("create_sample_findings", {}, {"DetectorId": "d1", "FindingTypes": []})
        result = detector.handle(_create("true"), client)
        stub.assert_no_pending_responses()
    assert result["Data"] == {"DetectorId": "d1", "CreatedByStack": "true"}


def test_a_failing_sample_findings_call_does_not_fail_the_create():
    client = boto3.client(
        "guardduty", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stub:
        stub.add_response("list_detectors", {"DetectorIds": ["d0"]})
        stub.add_client_error("create_sample_findings", "BadRequestException", "nope")
        result = detector.handle(_create("true"), client)
        stub.assert_no_pending_responses()
    assert result["PhysicalResourceId"] == "existing:d0"


def test_unknown_request_type_is_an_error(guardduty):
    with pytest.raises(ValueError, match="unknown request type"):
        detector.handle({"RequestType": "Bogus"}, guardduty)
