"""`fleet provision` / `status` / `teardown` against moto, many accounts via sts:AssumeRole.

moto keeps one backend per account id; credentials from ``assume_role`` into
``arn:aws:iam::<id>:role/...`` act in that account, so every attendee account here is a
separate, real moto account. (How custom resources are avoided: tests/fleet_moto.py.)
"""

from __future__ import annotations

import csv
import json
import threading

import boto3
import pytest

from secml.cli import main
from secml.fleet.aws import AssumedRoleSessions
from secml.fleet.roster import Target, read_roster
from secml.fleet.runner import run_fleet
from secml.fleet.stacks import provision_stack, spec_from_package, teardown_stack
from secml.fleet.state import DEPLOYED, StateFile
from tests.fleet_moto import MARKER_PARAMETER, account_ids, write_package, write_roster

REGION = "eu-west-1"
STACK = "FleetTest"


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_package(tmp_path / "pkg", STACK)
    return tmp_path


def session_in(account: str, region: str = REGION) -> boto3.Session:
    return AssumedRoleSessions("OrganizationAccountAccessRole")(Target(account, region))


def live_stacks(account: str) -> list[dict]:
    cf = session_in(account).client("cloudformation")
    return [s for s in cf.describe_stacks()["Stacks"] if s["StackStatus"] != "DELETE_COMPLETE"]


def provision_args(roster, *extra):
    return [
        "fleet",
        "provision",
        "--roster",
        str(roster),
        "--template",
        "pkg",
        "--assets-bucket",
        "ws-assets-{region}",
        "--assets-prefix",
        "event-1/",
        "--participant-role-name",
        "WSParticipantRole",
        "--poll-seconds",
        "0",
        "--parallel",
        "4",
        *extra,
    ]


def read_report(path):
    with open(path, newline="") as fh:
        return {row["account_id"]: row for row in csv.DictReader(fh)}


def test_parallel_provision_isolates_a_failing_account_then_teardown_empties_all(
    fleet_aws, workdir
):
    accounts = account_ids(6)
    broken = accounts[2]
    # That account already has the parameter the template creates: its stack cannot be created.
    session_in(broken).client("ssm").put_parameter(
        Name=MARKER_PARAMETER, Type="String", Value="left by someone"
    )
    roster = write_roster(workdir / "roster.csv", accounts)

    assert main(provision_args(roster)) == 1  # non-zero: not every account succeeded

    report = read_report(workdir / "fleet-report.csv")
    assert set(report) == set(accounts)
    assert report[broken]["status"] == "failed"
    assert "ParameterAlreadyExists" in report[broken]["error"]
    for account in accounts:
        if account == broken:
            continue
        assert report[account]["status"] == "deployed", report[account]
        assert report[account]["notebook_url"].startswith(
            f"https://{REGION}.console.aws.amazon.com/sagemaker/"
        )
        [stack] = live_stacks(account)
        assert stack["StackStatus"] == "CREATE_COMPLETE"
        params = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
        assert params == {
            "AssetsBucketName": f"ws-assets-{REGION}",
            "AssetsBucketPrefix": "event-1/",
            "ParticipantRoleName": "WSParticipantRole",
        }
        # The stack really is in that account: its bucket is in that account's S3.
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
        buckets = session_in(account).client("s3").list_buckets()["Buckets"]
        assert [b["Name"] for b in buckets] == [outputs["DataBucket"]]

    state = json.loads((workdir / "fleet-state.json").read_text())
    assert state["stack_name"] == STACK
    assert state["accounts"][f"{broken}/{REGION}"]["status"] == "failed"

    assert main(["fleet", "teardown", "--poll-seconds", "0", "--parallel", "4"]) == 0
    teardown = read_report(workdir / "fleet-teardown.csv")
    assert {row["status"] for row in teardown.values()} == {"deleted"}
    for account in accounts:
        assert live_stacks(account) == []
        assert session_in(account).client("s3").list_buckets()["Buckets"] == []


def test_resume_after_interruption_does_no_duplicate_work(fleet_aws, workdir):
    accounts = account_ids(8, start=200000000001)
    targets = read_roster(write_roster(workdir / "r.csv", accounts), default_region=None)
    spec = spec_from_package(workdir / "pkg", assets_bucket="b-{region}")
    state = StateFile(workdir / "state.json", spec.stack_name)

    calls: list[tuple[str, str]] = []
    lock = threading.Lock()
    assume = AssumedRoleSessions("OrganizationAccountAccessRole")

    def counting_sessions(target):
        session = assume(target)

        def record(model, **_):
            with lock:
                calls.append((target.account_id, model.name))

        session.events.register("before-call.cloudformation", record)
        return session

    def job(session, target):
        return provision_stack(session, target, spec, poll=0, timeout=30)

    def is_done(entry):
        return entry is not None and entry.status == DEPLOYED

    finished: list[str] = []

    def interrupt_after_three(result):
        finished.append(result.account_id)
        if len(finished) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_fleet(
            targets,
            job,
            state=state,
            session_factory=counting_sessions,
            parallel=2,
            is_done=is_done,
            on_result=interrupt_after_three,
        )
    first_run = {a for a, op in calls if op == "CreateStack"}
    done_before = {e.account_id for e in state.accounts.values() if e.status == DEPLOYED}
    assert 3 <= len(done_before) < len(accounts)  # stopped part-way; in-flight ones finished
    assert first_run == done_before

    calls.clear()
    resumed = run_fleet(
        targets,
        job,
        state=StateFile(workdir / "state.json", spec.stack_name),  # as a new process would
        session_factory=counting_sessions,
        parallel=2,
        is_done=is_done,
    )
    second_run = [a for a, op in calls if op == "CreateStack"]
    assert sorted(second_run) == sorted(set(accounts) - done_before)  # once each, only the rest
    assert not {a for a, _ in calls} & done_before  # no API call at all for finished accounts
    assert set(resumed.skipped) == {f"{a}/{REGION}" for a in done_before}
    assert resumed.counts()[DEPLOYED] == len(accounts)
    for account in accounts:
        assert len(live_stacks(account)) == 1


def test_rerun_with_changed_parameters_updates_and_force_redoes(fleet_aws, workdir):
    accounts = account_ids(2, start=300000000001)
    roster = write_roster(workdir / "roster.csv", accounts)
    assert main(provision_args(roster)) == 0
    stack_ids = {a: live_stacks(a)[0]["StackId"] for a in accounts}

    # Same inputs: nothing to do, every account skipped.
    assert main(provision_args(roster)) == 0
    # A new prefix changes the fingerprint: the existing stacks are updated in place.
    args = provision_args(roster)
    args[args.index("event-1/")] = "event-2/"
    assert main(args) == 0
    for account in accounts:
        [stack] = live_stacks(account)
        assert stack["StackId"] == stack_ids[account]
        params = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
        assert params["AssetsBucketPrefix"] == "event-2/"


def test_status_refresh_reads_every_account(fleet_aws, workdir, capsys):
    accounts = account_ids(3, start=400000000001)
    roster = write_roster(workdir / "roster.csv", accounts)
    assert main(provision_args(roster)) == 0
    session_in(accounts[0]).client("cloudformation").delete_stack(StackName=STACK)
    capsys.readouterr()

    assert main(["fleet", "status", "--refresh", "--poll-seconds", "0"]) == 0
    out = capsys.readouterr().out
    state = json.loads((workdir / "fleet-state.json").read_text())["accounts"]
    assert state[f"{accounts[0]}/{REGION}"]["status"] == "deleted"
    assert state[f"{accounts[1]}/{REGION}"]["status"] == "deployed"
    assert accounts[2] in out


def test_teardown_runs_the_leftover_check_per_account(fleet_aws, workdir):
    accounts = account_ids(2, start=500000000001)
    roster = write_roster(workdir / "roster.csv", accounts)
    assert main(provision_args(roster)) == 0
    # Something the stack did not own, left in one account.
    session_in(accounts[1]).client("s3").create_bucket(
        Bucket="attendee-made-this", CreateBucketConfiguration={"LocationConstraint": REGION}
    )

    def find_leftovers(session, stack_name):
        return [f"s3://{b['Name']}" for b in session.client("s3").list_buckets()["Buckets"]]

    seen = []
    for account in accounts:
        target = Target(account, REGION)
        result = teardown_stack(
            session_in(account), target, STACK, poll=0, timeout=30, find_leftovers=find_leftovers
        )
        seen.append((account, result.status, result.leftovers))
    assert seen == [
        (accounts[0], "deleted", []),
        (accounts[1], "delete_failed", ["s3://attendee-made-this"]),
    ]


def test_user_errors_are_one_line(fleet_aws, workdir, capsys):
    roster = workdir / "bad.csv"
    roster.write_text("12345\n")
    assert main(provision_args(roster)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "line 1" in err and "Traceback" not in err

    roster.write_text("111111111111\n")
    assert main(["fleet", "provision", "--roster", str(roster), "--template", "pkg"]) == 2
    assert "--assets-bucket" in capsys.readouterr().err
