"""Reading GuardDuty findings, for the GuardDuty ingest (staged next to its index.py).

Findings come in any container people meet: a JSON array (the workshop's files), GuardDuty's S3
export (gzipped JSON Lines, camelCase), EventBridge events (`detail`), a GetFindings response
(`Findings`), a single finding, arrays of any of these; or straight from the account's
detectors (ListFindings, then GetFindings 50 IDs at a time). Both the API's PascalCase and the
camelCase of events and exports work.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

if __package__:  # imported as lambda_src.guardduty_findings (CLI, offline demo, tests)
    from lambda_src import ingest_common as common
else:  # deployed: staged next to index.py
    import ingest_common as common

LOG = logging.getLogger("secml.ingest")
GET_FINDINGS_MAX_IDS = 50  # the GetFindings API limit
# Action types whose details carry the remote party's address.
REMOTE_IP_ACTIONS = (
    "AwsApiCallAction",
    "NetworkConnectionAction",
    "KubernetesApiCallAction",
    "RdsLoginAttemptAction",
)
ADDRESS_FIELDS = ("IpAddressV4", "IpAddressV6")


def get(obj: object, key: str):
    """obj[key] in either casing GuardDuty uses (Key in the API, key in events and exports)."""
    if not isinstance(obj, dict):
        return None
    value = obj.get(key)
    if value is None:
        value = obj.get(key[0].lower() + key[1:])
    return value


def principal_id(finding: dict):
    """Resource.AccessKeyDetails.PrincipalId: who used the access key (None if no key)."""
    return get(get(get(finding, "Resource"), "AccessKeyDetails"), "PrincipalId")


def remote_addresses(finding: dict) -> list:
    """Every remote address the finding names, as written (not checked)."""
    return [
        value
        for details in _remote_ip_details(finding)
        for field in ADDRESS_FIELDS
        if (value := get(details, field)) is not None
    ]


def _remote_ip_details(finding: dict) -> Iterator[dict]:
    action = get(get(finding, "Service"), "Action")
    if not isinstance(action, dict):
        return
    for name in REMOTE_IP_ACTIONS:
        details = get(get(action, name), "RemoteIpDetails")
        if isinstance(details, dict):
            yield details
    probes = get(get(action, "PortProbeAction"), "PortProbeDetails")
    if isinstance(probes, list):
        for probe in probes:
            details = get(probe, "RemoteIpDetails")
            if isinstance(details, dict):
                yield details


def is_sample(finding: object) -> bool:
    """GuardDuty's generated sample findings (Service.AdditionalInfo sample: true)."""
    info = get(get(finding, "Service"), "AdditionalInfo")
    if not isinstance(info, dict):
        return False
    if get(info, "Sample") is True:
        return True
    value = get(info, "Value")
    if isinstance(value, str) and "sample" in value:
        try:
            return json.loads(value).get("sample") is True
        except (ValueError, AttributeError, RecursionError):
            return False
    return False


def findings_in(document: object) -> list:
    """Findings in any container: arrays (nested too), EventBridge events, GetFindings
    responses, a single finding."""
    if isinstance(document, list):
        return [finding for item in document for finding in findings_in(item)]
    if _is_container(document):
        if isinstance(document.get("detail"), dict):
            return [document["detail"]]
        return findings_in(get(document, "Findings"))
    return [document]


def _is_container(obj: object) -> bool:
    return isinstance(obj, dict) and (
        isinstance(obj.get("detail"), dict) or isinstance(get(obj, "Findings"), list)
    )


def parse_findings(data: bytes):
    """Whole-file JSON, or JSON Lines (GuardDuty's S3 export): every line must parse."""
    try:
        return common.loads(data)
    except ValueError:
        lines = [line for line in data.splitlines() if line.strip()]
        if len(lines) < 2:
            raise
        return [common.loads(line) for line in lines]


def read_finding_files(sources: list[str], summary: common.Summary) -> Iterator[tuple[str, list]]:
    """(name, findings) of each readable file under the sources; the others skipped, counted."""
    for name, blob in common.iter_blobs(sources, summary):
        document = common.decode(name, blob, summary, parse_findings)
        if document is None:
            continue
        findings = findings_in(document)
        if not findings:
            common.skip_file(summary, name, "no-findings")
            continue
        summary.files_read += 1
        yield name, findings


def read_detector_findings(summary: common.Summary) -> Iterator[tuple[str, list]]:
    """This account's findings, from every detector in the function's region."""
    import boto3

    guardduty = boto3.client("guardduty")
    detectors = [
        d
        for page in guardduty.get_paginator("list_detectors").paginate()
        for d in page["DetectorIds"]
    ]
    if not detectors:
        LOG.warning("GuardDuty has no detector in this region: no findings to read")
    for detector in detectors:
        pages = guardduty.get_paginator("list_findings").paginate(DetectorId=detector)
        ids = [finding_id for page in pages for finding_id in page["FindingIds"]]
        for start in range(0, len(ids), GET_FINDINGS_MAX_IDS):
            batch = ids[start : start + GET_FINDINGS_MAX_IDS]
            findings = guardduty.get_findings(DetectorId=detector, FindingIds=batch)["Findings"]
            summary.files_read += 1
            yield f"detector/{detector}", findings
