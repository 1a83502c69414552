"""GuardDuty ingest (workshop exercises 1.2 and 2.2): findings -> <principal ID, IP address> tuples.

Reads the GuardDuty findings under s3://INPUT_BUCKET/INPUT_PREFIX (or, when INPUT_BUCKET is
unset, from this account's detectors) and writes one `principal,ip` line per remote address of
each finding that names an access key to s3://OUTPUT_BUCKET/OUTPUT_KEY: the data IP Insights
scores. Sample findings are skipped unless INCLUDE_SAMPLES is true. Reading the findings is in
guardduty_findings.py, the rest both functions share in ingest_common.py.
"""

from __future__ import annotations

import json
from collections import Counter

if __package__:  # imported as lambda_src.guardduty_ingest.index (CLI, offline demo, tests)
    from lambda_src import guardduty_findings as gd
    from lambda_src import ingest_common as common
else:  # deployed: the two modules are staged next to this file
    import guardduty_findings as gd
    import ingest_common as common

PRINT_LIMIT = 50  # findings printed per run
# TODO (exercise 1.2, step 4): set PRINT_IN_FULL to 0, to print every finding as one line.
PRINT_IN_FULL = 0  # EXERCISE: PRINT_IN_FULL = 3
OUTPUT_KEY = "infer/guardduty_tuples.csv"  # unless OUTPUT_KEY is set


def print_full_finding(finding: dict) -> None:
    print(json.dumps(finding, indent=2, default=str))


def print_short_finding(finding: dict) -> None:
    """One line per finding: when, type, severity, who, from where."""
    addresses = ",".join(dict.fromkeys(map(str, gd.remote_addresses(finding))))
    print(
        f"{gd.get(finding, 'UpdatedAt')} {gd.get(finding, 'Type')} "
        f"severity={gd.get(finding, 'Severity')} principal={gd.principal_id(finding)} "
        f"ip={addresses or None}"
    )


def print_finding(finding: dict, n: int) -> None:
    """The run's first PRINT_IN_FULL findings whole, the others one line each. (The console
    shows only the last 4 KB of the output; the function's CloudWatch log has all of it.)"""
    if n < PRINT_IN_FULL:
        print_full_finding(finding)
    else:
        print_short_finding(finding)


def tuples_from_finding(finding: dict, *, ipv4_only=False, skipped=None) -> list[tuple[str, str]]:
    """One <principal ID, IP address> tuple per distinct remote address of the finding; what
    gives none (the finding, or one of its addresses) is counted in `skipped`."""
    skipped = Counter() if skipped is None else skipped
    principal_id = gd.principal_id(finding)  # Resource.AccessKeyDetails.PrincipalId
    addresses = gd.remote_addresses(finding)  # Service.Action.*.RemoteIpDetails.IpAddressV4/V6
    if not isinstance(finding, dict):
        skipped["not-a-finding"] += 1
    elif principal_id is None:
        skipped["no-access-key"] += 1
    elif (principal := common.principal_of(principal_id)) is None:
        skipped["bad-principal-id"] += 1
    elif not addresses:
        skipped["no-remote-ip"] += 1
    else:
        tuples = []
        for value in addresses:
            ip, reason = common.classify_address(value, ipv4_only)
            if ip is None:
                skipped[reason] += 1
            elif (principal, ip) not in tuples:
                tuples.append((principal, ip))
        return tuples
    return []


def get_tuples(findings: list, *, ipv4_only=False, include_samples=False, skipped=None) -> list:
    """Tuples of all findings, in order; what gives none is counted by reason in `skipped`."""
    skipped = Counter() if skipped is None else skipped
    tuples = []
    for finding in findings:
        if not include_samples and gd.is_sample(finding):
            skipped["sample-finding"] += 1
        else:
            tuples += tuples_from_finding(finding, ipv4_only=ipv4_only, skipped=skipped)
    return tuples


def handler(event, context):
    """Entry point. The workshop's test event is ignored; the CLI passes sources and output."""
    run = common.Run(
        event, default_key=OUTPUT_KEY, print_limit=PRINT_LIMIT, unit="findings", need_input=False
    )
    config, summary = run.config, run.summary
    options = {"ipv4_only": config.ipv4_only, "include_samples": config.include_samples}
    if config.sources:
        batches = gd.read_finding_files(config.sources, summary)
    else:
        batches = gd.read_detector_findings(summary)
    with run:  # the tuples are written at the end, and only if the whole run succeeds
        for _name, findings in batches:
            for n, finding in enumerate(findings[: run.left_to_print()], summary.records):
                print_finding(finding, n)
            # TODO (exercise 2.2, step 1): uncomment the line below.
            run.output.write(get_tuples(findings, **options, skipped=summary.skipped))  # EXERCISE
            summary.records += len(findings)
    return {**run.result(), "findings": summary.records}
