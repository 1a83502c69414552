"""Custom resource: use the region's GuardDuty detector, creating one only if there is none.

A plain AWS::GuardDuty::Detector fails when the account already has one (one detector per
account and region), so the stack asks first. The physical resource id records whether this
resource created the detector ("created:<id>") or found it ("existing:<id>"); delete removes
the detector (and with it the sample findings) only in the first case.
"""

from __future__ import annotations

import logging

import boto3
from botocore.exceptions import ClientError

logger = logging.getLogger()
logger.setLevel(logging.INFO)

CREATED = "created"
EXISTING = "existing"


def _detector_ids(guardduty) -> list[str]:
    ids: list[str] = []
    for page in guardduty.get_paginator("list_detectors").paginate():
        ids.extend(page.get("DetectorIds", []))
    return ids


def _parse_physical_id(physical_id: str) -> tuple[str, str]:
    origin, _, detector_id = physical_id.partition(":")
    return origin, detector_id


def _wants_sample_findings(properties: dict) -> bool:
    return str(properties.get("SampleFindings", "false")).lower() == "true"


def _response(origin: str, detector_id: str) -> dict:
    return {
        "PhysicalResourceId": f"{origin}:{detector_id}",
        "Data": {"DetectorId": detector_id, "CreatedByStack": str(origin == CREATED).lower()},
    }


def _sample_findings(guardduty, detector_id: str) -> None:
    # FindingTypes=[] asks for one sample of every finding type, like the console button.
    # A failure here must not fail the create: the detector would then leak (a failed create
    # reports no physical id, so the delete that follows could not tell it was ours).
    try:
        guardduty.create_sample_findings(DetectorId=detector_id, FindingTypes=[])
        logger.info("generated sample findings in %s", detector_id)
    except ClientError as exc:
        logger.warning("could not generate sample findings in %s: %s", detector_id, exc)


def _create(guardduty, properties: dict) -> dict:
    existing = _detector_ids(guardduty)
    if existing:
        origin, detector_id = EXISTING, existing[0]
        logger.info("using existing detector %s", detector_id)
    else:
        tags = properties.get("Tags") or {}
        kwargs = {"Enable": True, "FindingPublishingFrequency": "FIFTEEN_MINUTES"}
        if tags:
            kwargs["Tags"] = tags
        detector_id = guardduty.create_detector(**kwargs)["DetectorId"]
        origin = CREATED
        logger.info("created detector %s", detector_id)
    if _wants_sample_findings(properties):
        _sample_findings(guardduty, detector_id)
    return _response(origin, detector_id)


def _update(guardduty, event: dict) -> dict:
    origin, detector_id = _parse_physical_id(event["PhysicalResourceId"])
    properties = event.get("ResourceProperties", {})
    old = event.get("OldResourceProperties", {})
    if _wants_sample_findings(properties) and not _wants_sample_findings(old):
        _sample_findings(guardduty, detector_id)
    return _response(origin, detector_id)


def _delete(guardduty, event: dict) -> dict:
    physical_id = event["PhysicalResourceId"]
    origin, detector_id = _parse_physical_id(physical_id)
    if origin != CREATED or not detector_id:
        logger.info("leaving detector %s in place: the stack did not create it", detector_id)
        return {"PhysicalResourceId": physical_id}
    if detector_id in _detector_ids(guardduty):
        guardduty.delete_detector(DetectorId=detector_id)
        logger.info("deleted detector %s", detector_id)
    return {"PhysicalResourceId": physical_id}


def handle(event: dict, guardduty) -> dict:
    """The provider framework's onEvent logic, with the GuardDuty client passed in."""
    request = event["RequestType"]
    if request == "Create":
        return _create(guardduty, event.get("ResourceProperties", {}))
    if request == "Update":
        return _update(guardduty, event)
    if request == "Delete":
        return _delete(guardduty, event)
    raise ValueError(f"unknown request type {request!r}")


def on_event(event, context):
    return handle(event, boto3.client("guardduty"))
