"""Stops this SageMaker notebook instance after a stretch without Jupyter activity.

Installed by the on-start lifecycle script, run every five minutes by a systemd timer (or cron).
Idle means: no kernel is busy, and the latest activity of any kernel or terminal (or, when there
is none, the moment this script first saw none) lies more than --idle-minutes in the past.
"""

from __future__ import annotations  # the notebook's python may be older than ours

import argparse
import datetime as dt
import json
import os
import ssl
import subprocess
import urllib.request

JUPYTER = "https://localhost:8443"
METADATA = "/opt/ml/metadata/resource-metadata.json"
NOTHING_OPEN_SINCE = "/tmp/secml-autostop-nothing-open-since"


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def is_idle(
    activities: list[dict],
    now: dt.datetime,
    idle_minutes: float,
    nothing_open_since: dt.datetime | None,
) -> bool:
    """activities: Jupyter kernel or terminal models (execution_state, last_activity)."""
    if any(item.get("execution_state") == "busy" for item in activities):
        return False
    stamps = [parse_time(item["last_activity"]) for item in activities if item.get("last_activity")]
    if stamps:
        last = max(stamps)
    elif activities:
        return False  # something is open but reports no activity time: keep running
    else:
        last = nothing_open_since or now
    return now - last >= dt.timedelta(minutes=idle_minutes)


def _get(path: str) -> list[dict]:
    # Jupyter on a notebook instance serves a self-signed certificate on localhost.
    context = ssl._create_unverified_context()
    with urllib.request.urlopen(JUPYTER + path, context=context, timeout=10) as response:
        return json.load(response)


def _activities() -> list[dict]:
    kernels = {k["id"]: k for k in _get("/api/kernels")}
    for session in _get("/api/sessions"):
        kernel = session.get("kernel") or {}
        if kernel.get("id"):
            kernels.setdefault(kernel["id"], kernel)
    try:
        terminals = _get("/api/terminals")
    except OSError:
        terminals = []
    return list(kernels.values()) + terminals


def _nothing_open_since(activities: list[dict], now: dt.datetime) -> dt.datetime | None:
    if activities:
        if os.path.exists(NOTHING_OPEN_SINCE):
            os.remove(NOTHING_OPEN_SINCE)
        return None
    if not os.path.exists(NOTHING_OPEN_SINCE):
        with open(NOTHING_OPEN_SINCE, "w", encoding="utf-8") as handle:
            handle.write(now.isoformat())
    with open(NOTHING_OPEN_SINCE, encoding="utf-8") as handle:
        return parse_time(handle.read().strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--idle-minutes", type=float, required=True)
    parser.add_argument("--region", required=True)
    args = parser.parse_args()
    # timezone.utc, not dt.UTC: the notebook's python may predate 3.11.
    now = dt.datetime.now(dt.timezone.utc)  # noqa: UP017
    try:
        activities = _activities()
    except (OSError, ValueError) as exc:
        print(f"{now.isoformat()} Jupyter not reachable ({exc}); trying again later")
        return 0
    if not is_idle(activities, now, args.idle_minutes, _nothing_open_since(activities, now)):
        return 0
    with open(METADATA, encoding="utf-8") as handle:
        name = json.load(handle)["ResourceName"]
    print(f"{now.isoformat()} idle for {args.idle_minutes} minutes: stopping {name}")
    stop_notebook_instance(name, args.region)
    return 0


def stop_notebook_instance(name: str, region: str) -> None:
    """With boto3 when this python has it, else with the AWS CLI (on-start may pick either)."""
    try:
        import boto3
    except ImportError:
        command = ["aws", "sagemaker", "stop-notebook-instance", "--region", region]
        subprocess.run([*command, "--notebook-instance-name", name], check=True)
        return
    boto3.client("sagemaker", region_name=region).stop_notebook_instance(NotebookInstanceName=name)


if __name__ == "__main__":
    raise SystemExit(main())
