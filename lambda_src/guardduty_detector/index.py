"""Custom resource: use the region's GuardDuty detector, creating one only if there is none.

A plain AWS::GuardDuty::Detector fails when the account already has one (one detector per
account and region), so the stack asks first. The physical resource id records whether this
resource created the detector ("created:<id>") or found it ("existing:<id>").

- A detector that exists but is suspended (GetDetector Status DISABLED) fails the create with
  one line that says what to do. It is not resumed: another stack in the account, or the
  organisation's GuardDuty administrator, may rely on it staying as it is, and a destroy could
  not know whether suspending it again is right.
- Sample findings go only into a detector this resource created (SampleFindings "true"), unless
  the facilitator forces them into an existing one ("force"): in an organisation that runs
  GuardDuty centrally they reach the administrator account, Security Hub and EventBridge.
- Delete removes the detector (and with it the sample findings) only if the physical id says
  this resource created it AND the detector still carries this stack's tag.
"""

from __future__ import annotations

import logging

import boto3
from botocore.exceptions import ClientError

logger = logging.getLogger()
logger.setLevel(logging.INFO)

CREATED = "created"
EXISTING = "existing"
# SampleFindings property values (the `sample_findings` context of stacks/app.py).
NEVER, IF_CREATED, FORCE = "false", "true", "force"


class SuspendedDetectorError(RuntimeError):
    """The region's detector exists but is suspended; the stack does not resume it."""


def _detector_ids(guardduty) -> list[str]:
    ids: list[str] = []
    for page in guardduty.get_paginator("list_detectors").paginate():
        ids.extend(page.get("DetectorIds", []))
    return ids


def _parse_physical_id(physical_id: str) -> tuple[str, str]:
    origin, _, detector_id = physical_id.partition(":")
    return origin, detector_id


def _sample_mode(properties: dict) -> str:
    value = str(properties.get("SampleFindings", NEVER)).lower()
    return value if value in (NEVER, IF_CREATED, FORCE) else NEVER


def _wants_sample_findings(properties: dict, origin: str) -> bool:
    mode = _sample_mode(properties)
    return mode == FORCE or (mode == IF_CREATED and origin == CREATED)


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


def _refuse_if_suspended(guardduty, detector_id: str) -> None:
    # ListDetectors lists suspended detectors too; only GetDetector's Status tells them apart.
    # https://docs.aws.amazon.com/guardduty/latest/APIReference/API_GetDetector.html
    status = guardduty.get_detector(DetectorId=detector_id).get("Status")
    if status != "ENABLED":
        region = guardduty.meta.region_name
        raise SuspendedDetectorError(
            f"GuardDuty detector {detector_id} in {region} is suspended (status {status}); "
            "the workshop needs it enabled. Resume it (aws guardduty update-detector "
            f"--detector-id {detector_id} --enable --region {region}; in an organisation, "
            "the GuardDuty administrator account does this) and deploy again."
        )


def _create(guardduty, properties: dict) -> dict:
    existing = _detector_ids(guardduty)
    if existing:
        origin, detector_id = EXISTING, existing[0]
        _refuse_if_suspended(guardduty, detector_id)
        logger.info("using existing detector %s", detector_id)
    else:
        tags = properties.get("Tags") or {}
        kwargs = {"Enable": True, "FindingPublishingFrequency": "FIFTEEN_MINUTES"}
        if tags:
            kwargs["Tags"] = tags
        detector_id = guardduty.create_detector(**kwargs)["DetectorId"]
        origin = CREATED
        logger.info("created detector %s", detector_id)
    if _wants_sample_findings(properties, origin):
        _sample_findings(guardduty, detector_id)
    elif _sample_mode(properties) == IF_CREATED:
        logger.info("no sample findings: detector %s was there before the stack", detector_id)
    return _response(origin, detector_id)


def _update(guardduty, event: dict) -> dict:
    origin, detector_id = _parse_physical_id(event["PhysicalResourceId"])
    properties = event.get("ResourceProperties", {})
    old = event.get("OldResourceProperties", {})
    if _wants_sample_findings(properties, origin) and not _wants_sample_findings(old, origin):
        _sample_findings(guardduty, detector_id)
    return _response(origin, detector_id)


def _carries_stack_tags(guardduty, detector_id: str, wanted: dict) -> bool:
    """Whether the detector carries every tag the stack gave it (none given: never)."""
    tags = guardduty.get_detector(DetectorId=detector_id).get("Tags") or {}
    return bool(wanted) and all(tags.get(key) == value for key, value in wanted.items())


def _delete(guardduty, event: dict) -> dict:
    physical_id = event["PhysicalResourceId"]
    origin, detector_id = _parse_physical_id(physical_id)
    if origin != CREATED or not detector_id:
        logger.info("leaving detector %s in place: the stack did not create it", detector_id)
        return {"PhysicalResourceId": physical_id}
    if detector_id not in _detector_ids(guardduty):
        return {"PhysicalResourceId": physical_id}
    wanted = event.get("ResourceProperties", {}).get("Tags") or {}
    if not _carries_stack_tags(guardduty, detector_id, wanted):
        logger.warning(
            "leaving detector %s in place: it does not carry this stack's tags %s",
            detector_id,
            wanted,
        )
        return {"PhysicalResourceId": physical_id}
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
