"""Benchmark: `fleet provision` over a simulated fleet, parallel against serial.

    .venv/bin/python benchmarks/fleet.py [--accounts 200] [--parallel 20] [--latency-ms 50]

The fleet is moto's server on 127.0.0.1 (boto3 reaches it through ``AWS_ENDPOINT_URL``), so
every call is real HTTP and the worker threads really overlap on I/O. Each attendee account is a
separate moto account, entered with ``sts:AssumeRole``. The server runs in its own process
(``python -m moto.server``), not as ``ThreadedMotoServer`` in ours: moto spends tens of ms of
CPU per CreateStack, and inside our process that CPU shares our GIL, which made the "AWS side"
a serial bottleneck that real AWS is not. (`--in-process` runs it the other way, to see that.)

moto answers in about a millisecond and creates a stack at once; real AWS does neither. To model
that, every API call first waits ``--latency-ms`` (a ``before-send`` hook that sleeps, i.e. time
spent waiting on the network, not CPU). It does not model CloudFormation's minutes of resource
creation: with those the per-account time grows and parallel wins by even more, up to the
per-account API limits that the adaptive retry mode absorbs.

The same code path runs both times (``run_fleet`` + ``provision_stack``); only ``parallel``
differs, and each run uses its own accounts.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=20)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument(
        "--serial-accounts",
        type=int,
        default=None,
        help="accounts for the serial run (default: --accounts); fewer = extrapolated",
    )
    parser.add_argument("--in-process", action="store_true", help="ThreadedMotoServer instead")
    args = parser.parse_args()

    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="eu-west-1",
    )
    os.environ.pop("AWS_PROFILE", None)

    import logging
    import subprocess
    import urllib.request

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise

    from secml.fleet.aws import AssumedRoleSessions
    from secml.fleet.roster import Target
    from secml.fleet.runner import run_fleet
    from secml.fleet.stacks import provision_stack, spec_from_package
    from secml.fleet.state import DEPLOYED, StateFile
    from tests.fleet_moto import account_ids, write_package

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    if args.in_process:
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        stop = server.stop
    else:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stop = proc.terminate
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    delay = args.latency_ms / 1000

    def add_latency(**_kwargs):
        time.sleep(delay)  # waiting on the network: releases the GIL like real I/O

    class SlowNetworkSessions(AssumedRoleSessions):
        def _base(self):
            fresh = getattr(self._local, "session", None) is None
            base = super()._base()
            if fresh:
                base.events.register("before-send", add_latency)
            return base

        def __call__(self, target):
            session = super().__call__(target)
            session.events.register("before-send", add_latency)
            return session

    results = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            spec = spec_from_package(write_package(Path(tmp) / "pkg"), assets_bucket="assets")
            runs = [
                ("parallel", args.parallel, args.accounts, 100000000001),
                ("serial", 1, args.serial_accounts or args.accounts, 900000000001),
            ]
            for label, parallel, n, start in runs:
                targets = [Target(a, "eu-west-1") for a in account_ids(n, start=start)]
                state = StateFile(Path(tmp) / f"{label}.json", spec.stack_name)
                cpu = time.process_time()
                summary = run_fleet(
                    targets,
                    lambda session, t: provision_stack(session, t, spec, poll=1, timeout=300),
                    state=state,
                    session_factory=SlowNetworkSessions("OrganizationAccountAccessRole"),
                    parallel=parallel,
                )
                cpu = time.process_time() - cpu
                ok = summary.counts()[DEPLOYED]
                results[label] = (n, summary.seconds, ok)
                print(
                    f"{label:8s} parallel={parallel:<3d} accounts={n:<4d} deployed={ok:<4d} "
                    f"{summary.seconds:7.1f} s  ({summary.seconds / n * 1000:6.0f} ms/account; "
                    f"our CPU {cpu / n * 1000:4.0f} ms/account)",
                    flush=True,
                )
    finally:
        stop()

    n_par, t_par, _ = results["parallel"]
    n_ser, t_ser, _ = results["serial"]
    serial_full = t_ser / n_ser * n_par
    note = "" if n_ser == n_par else f" (serial extrapolated from {n_ser} accounts)"
    print(
        f"speed-up for {n_par} accounts at {args.latency_ms:.0f} ms/call: "
        f"{serial_full:.1f} s serial vs {t_par:.1f} s parallel = "
        f"{serial_full / t_par:.1f}x{note}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
