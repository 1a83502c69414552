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


def _props(sample_findings: str = "false", stack: str = "T") -> dict:
    return {"SampleFindings": sample_findings, "Tags": {"secml:stack": stack}}


def _create(sample_findings: str = "false", stack: str = "T") -> dict:
    return {"RequestType": "Create", "ResourceProperties": _props(sample_findings, stack)}


def _delete(physical_id: str, stack: str = "T") -> dict:
    return {
        "RequestType": "Delete",
        "PhysicalResourceId": physical_id,
        "ResourceProperties": _props(stack=stack),
    }


def _stubbed_client():
    return boto3.client(
        "guardduty", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )


ENABLED = {"ServiceRole": "r", "Status": "ENABLED"}  # GetDetector output, trimmed


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


def test_create_generates_sample_findings_into_the_detector_it_created():
    # moto has no CreateSampleFindings: the whole conversation is stubbed here.
    client = _stubbed_client()
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
    client = _stubbed_client()
    with Stubber(client) as stub:
        stub.add_response("list_detectors", {"DetectorIds": ["d0"]})
        stub.add_response("get_detector", ENABLED, {"DetectorId": "d0"})
        stub.add_client_error("create_sample_findings", "BadRequestException", "nope")
        result = detector.handle(_create("force"), client)
        stub.assert_no_pending_responses()
    assert result["PhysicalResourceId"] == "existing:d0"


# Issue 12, item 1: in an organisation that runs GuardDuty centrally, samples generated into a
# member's existing detector reach the administrator account, Security Hub and EventBridge.
def test_no_sample_findings_go_into_a_detector_the_stack_did_not_create():
    client = _stubbed_client()
    with Stubber(client) as stub:
        stub.add_response("list_detectors", {"DetectorIds": ["d0"]})
        stub.add_response("get_detector", ENABLED, {"DetectorId": "d0"})
        # No create_sample_findings queued: the Stubber fails the test if the handler calls it.
        result = detector.handle(_create("true"), client)
        stub.assert_no_pending_responses()
    assert result["Data"] == {"DetectorId": "d0", "CreatedByStack": "false"}


def test_force_puts_sample_findings_into_an_existing_detector_too():
    client = _stubbed_client()
    with Stubber(client) as stub:
        stub.add_response("list_detectors", {"DetectorIds": ["d0"]})
        stub.add_response("get_detector", ENABLED, {"DetectorId": "d0"})
        stub.add_response("create_sample_findings", {}, {"DetectorId": "d0", "FindingTypes": []})
        detector.handle(_create("force"), client)
        stub.assert_no_pending_responses()


def test_turning_sample_findings_on_later_leaves_an_existing_detector_alone():
    client = _stubbed_client()
    update = {
        "RequestType": "Update",
        "PhysicalResourceId": "existing:d0",
        "ResourceProperties": _props("true"),
        "OldResourceProperties": _props("false"),
    }
    with Stubber(client):  # nothing queued: any call fails the test
        assert detector.handle(update, client)["PhysicalResourceId"] == "existing:d0"


# Issue 12, item 2: ListDetectors returns a suspended detector too.
def test_a_suspended_detector_fails_the_create_with_what_to_do(guardduty):
    suspended = guardduty.create_detector(Enable=False)["DetectorId"]
    with pytest.raises(detector.SuspendedDetectorError) as failure:
        detector.handle(_create("force"), guardduty)
    message = str(failure.value)
    assert f"detector {suspended} in {REGION} is suspended" in message
    assert f"update-detector --detector-id {suspended} --enable --region {REGION}" in message
    assert "\n" not in message
    detail = guardduty.get_detector(DetectorId=suspended)
    assert guardduty.list_detectors()["DetectorIds"] == [suspended]
    assert detail["Status"] == "DISABLED"  # not resumed behind anyone's back


# Issue 12, item 3: two stacks in one account and region.
def test_only_the_stack_that_created_and_tagged_the_detector_deletes_it(guardduty):
    first = detector.handle(_create(stack="A"), guardduty)
    second = detector.handle(_create(stack="B"), guardduty)
    detector_id = first["Data"]["DetectorId"]
    assert second["PhysicalResourceId"] == f"existing:{detector_id}"

    # B's delete, even with a physical id that claims creation, leaves A's detector alone.
    detector.handle(_delete(f"created:{detector_id}", stack="B"), guardduty)
    detector.handle(_delete(second["PhysicalResourceId"], stack="B"), guardduty)
    assert guardduty.list_detectors()["DetectorIds"] == [detector_id]

    detector.handle(_delete(first["PhysicalResourceId"], stack="A"), guardduty)
    assert guardduty.list_detectors()["DetectorIds"] == []


def test_a_created_record_without_the_stack_tag_on_the_detector_deletes_nothing(guardduty):
    untagged = guardduty.create_detector(Enable=True)["DetectorId"]
    detector.handle(_delete(f"created:{untagged}"), guardduty)
    assert guardduty.list_detectors()["DetectorIds"] == [untagged]


def test_unknown_request_type_is_an_error(guardduty):
    with pytest.raises(ValueError, match="unknown request type"):
        detector.handle({"RequestType": "Bogus"}, guardduty)
