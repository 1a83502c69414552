"""GuardDuty ingest (workshop exercises 1.2 and 2.2): findings -> <principal ID, IP address> tuples.

Reads GuardDuty findings from s3://INPUT_BUCKET/INPUT_PREFIX in any container people meet (a
JSON array as in the workshop, GuardDuty's S3 export in gzipped JSON Lines, EventBridge events,
a GetFindings response, a single finding), or, when INPUT_BUCKET is unset, straight from this
account's detectors (ListFindings/GetFindings). Writes one `principal,ip` line per remote
address of each finding that names an access key, to s3://OUTPUT_BUCKET/OUTPUT_KEY, the data
IP Insights scores. Sample findings are skipped unless INCLUDE_SAMPLES is true.

Both the API's PascalCase (GetFindings) and the camelCase of EventBridge and S3 exports work.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

if __package__:  # imported as lambda_src.guardduty_ingest.index (CLI, offline demo, tests)
    from lambda_src import ingest_common as common
else:  # deployed: ingest_common.py is staged next to this file
    import ingest_common as common

LOG = logging.getLogger("secml.ingest")
PRINT_LIMIT = 50
DEFAULT_OUTPUT_KEY = "infer/guardduty_tuples.csv"
GET_FINDINGS_MAX_IDS = 50  # the GetFindings API limit
# Action types whose details carry the remote party's address.
REMOTE_IP_ACTIONS = (
    "AwsApiCallAction",
    "NetworkConnectionAction",
    "KubernetesApiCallAction",
    "RdsLoginAttemptAction",
)


def _get(obj: object, key: str):
    """obj[key] in either casing GuardDuty uses (Key in the API, key in events and exports)."""
    if not isinstance(obj, dict):
        return None
    value = obj.get(key)
    if value is None:
        value = obj.get(key[0].lower() + key[1:])
    return value


def print_full_finding(finding: dict) -> None:
    print(json.dumps(finding, indent=2, default=str))


def print_short_finding(finding: dict) -> None:
    """One line per finding: type, severity, who, from where."""
    key = _get(_get(finding, "Resource"), "AccessKeyDetails")
    addresses = dict.fromkeys(
        str(_get(details, field))
        for details in _remote_ip_details(finding)
        for field in ("IpAddressV4", "IpAddressV6")
        if _get(details, field) is not None
    )
    print(
        f"{_get(finding, 'UpdatedAt')} {_get(finding, 'Type')} "
        f"severity={_get(finding, 'Severity')} principal={_get(key, 'PrincipalId')} "
        f"ip={','.join(addresses) or None}"
    )


def is_sample(finding: dict) -> bool:
    """GuardDuty's generated sample findings (Service.AdditionalInfo sample: true)."""
    info = _get(_get(finding, "Service"), "AdditionalInfo")
    if not isinstance(info, dict):
        return False
    if _get(info, "Sample") is True:
        return True
    value = _get(info, "Value")
    if isinstance(value, str) and "sample" in value:
        try:
            return json.loads(value).get("sample") is True
        except (ValueError, AttributeError):
            return False
    return False


def _remote_ip_details(finding: dict) -> Iterator[dict]:
    action = _get(_get(finding, "Service"), "Action")
    if not isinstance(action, dict):
        return
    for name in REMOTE_IP_ACTIONS:
        details = _get(_get(action, name), "RemoteIpDetails")
        if isinstance(details, dict):
            yield details
    probes = _get(_get(action, "PortProbeAction"), "PortProbeDetails")
    if isinstance(probes, list):
        for probe in probes:
            details = _get(probe, "RemoteIpDetails")
            if isinstance(details, dict):
                yield details


def _remote_addresses(finding: dict, *, ipv4_only: bool) -> list[tuple[str | None, str | None]]:
    """Every remote address of the finding: (canonical, None) or (None, reason)."""
    out = []
    for details in _remote_ip_details(finding):
        for field in ("IpAddressV4", "IpAddressV6"):
            value = _get(details, field)
            if value is not None:
                out.append(common.classify_address(value, ipv4_only))
    return out


def _tuples_or_reason(finding: object, ipv4_only: bool) -> tuple[list[tuple[str, str]], str | None]:
    if not isinstance(finding, dict):
        return [], "not-a-finding"
    principal_id = _get(_get(_get(finding, "Resource"), "AccessKeyDetails"), "PrincipalId")
    if principal_id is None:
        return [], "no-access-key"
    principal = common.principal_of(principal_id)
    if principal is None:
        return [], "bad-principal-id"
    addresses = _remote_addresses(finding, ipv4_only=ipv4_only)
    if not addresses:
        return [], "no-remote-ip"
    ips = list(dict.fromkeys(ip for ip, _ in addresses if ip is not None))
    if not ips:
        return [], next(reason for _, reason in addresses)
    return [(principal, ip) for ip in ips], None


def tuples_from_finding(finding: dict, *, ipv4_only: bool = False) -> list[tuple[str, str]]:
    """The finding's <principal ID, IP address> tuples: one per distinct remote address."""
    return _tuples_or_reason(finding, ipv4_only)[0]


def get_tuples(findings: list, *, ipv4_only=False, include_samples=False, skipped=None) -> list:
    """Tuples of all findings; those that give none are counted by reason in `skipped`."""
    tuples = []
    for finding in findings:
        if not include_samples and isinstance(finding, dict) and is_sample(finding):
            found, reason = [], "sample-finding"
        else:
            found, reason = _tuples_or_reason(finding, ipv4_only)
        if reason is not None and skipped is not None:
            skipped[reason] += 1
        tuples.extend(found)
    return tuples


def findings_in(document: object) -> list:
    """Findings in any container: array, EventBridge event, GetFindings response, one finding."""
    if isinstance(document, list):
        out = []
        for item in document:
            out.extend(findings_in(item) if _is_container(item) else [item])
        return out
    if _is_container(document):
        if isinstance(document.get("detail"), dict):
            return [document["detail"]]
        found = _get(document, "Findings")
        return list(found) if isinstance(found, list) else []
    return [document]


def _is_container(obj: object) -> bool:
    return isinstance(obj, dict) and (
        isinstance(obj.get("detail"), dict) or isinstance(_get(obj, "Findings"), list)
    )


def _parse_findings(data: bytes):
    """Whole-file JSON, or JSON Lines (GuardDuty's S3 export): every line must parse."""
    try:
        return common.loads(data)
    except ValueError:
        lines = [line for line in data.splitlines() if line.strip()]
        if len(lines) < 2:
            raise
        return [common.loads(line) for line in lines]


def read_finding_files(sources: list[str], summary: common.Summary) -> Iterator[tuple[str, list]]:
    for name, blob in common.iter_blobs(sources, summary):
        document = common.decode(name, blob, summary, _parse_findings)
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


def handler(event, context):
    """Entry point. The event is ignored in the workshop; the CLI passes sources and output."""
    config = common.config_from(event, default_key=DEFAULT_OUTPUT_KEY, need_input=False)
    print_limit = event.get("print_limit", PRINT_LIMIT) if isinstance(event, dict) else PRINT_LIMIT
    summary = common.Summary()
    if config.sources:
        batches = read_finding_files(config.sources, summary)
    else:
        batches = read_detector_findings(summary)
    options = {
        "ipv4_only": config.ipv4_only,
        "include_samples": config.include_samples,
        "skipped": summary.skipped,
    }
    output = common.TupleOutput(config.output)
    printed = 0
    try:
        for _name, findings in batches:
            for finding in findings:
                if printed < print_limit:
                    # TODO (exercise 1.2, step 5): replace print_full_finding by print_short_finding
                    print_short_finding(finding)  # EXERCISE: print_full_finding(finding)
                    printed += 1
            # TODO (exercise 2.2, step 2): uncomment the line below.
            output.write(get_tuples(findings, **options))  # EXERCISE
            summary.records += len(findings)
        if print_limit and summary.records > printed:
            print(f"... and {summary.records - printed} more findings (not printed)")
        summary.tuples_written = output.count
        summary.output = output.publish()
    except BaseException:
        output.discard()
        raise
    if summary.output is None:
        LOG.warning("no tuples written: exercise step not done yet, or no usable input")
    result = summary.as_dict()
    result["findings"] = summary.records
    LOG.info("guardduty ingest done: %s", result)
    return result
