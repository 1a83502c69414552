"""`fleet preflight` against moto (STS, GuardDuty) and botocore's Stubber (Service Quotas: moto
models only VPC's quotas and not ListServiceQuotas)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from secml.cli import main
from secml.fleet.aws import AssumedRoleSessions
from secml.fleet.preflight import instance_needs, preflight
from secml.fleet.roster import Target

REGION = "eu-west-1"
READY, SUSPENDED, NO_QUOTA, APPLIED = "111111111111", "222222222222", "333333333333", "444444444444"
DEFAULTS = {
    "ml.t3.medium for notebook instance usage": 20,
    "ml.m5.large for training job usage": 0,  # as new accounts often have it
    "ml.m5.large for endpoint usage": 4,
}
# What Service Quotas has applied (raised) per account; defaults fill in the rest.
APPLIED_VALUES = {
    READY: {"ml.m5.large for training job usage": 2},
    SUSPENDED: {"ml.m5.large for training job usage": 2},
    NO_QUOTA: {},
    APPLIED: {"ml.m5.large for training job usage": 2, "ml.m5.large for endpoint usage": 0},
}


def _quota(name, value):
    return {"ServiceCode": "sagemaker", "QuotaName": name, "QuotaCode": "L-TEST", "Value": value}


def stubbed_quotas(account: str):
    client = boto3.client("service-quotas", region_name=REGION)
    stub = Stubber(client)
    applied = APPLIED_VALUES[account]
    stub.add_response(
        "list_service_quotas",
        {"Quotas": [_quota(n, v) for n, v in applied.items()]},
        {"ServiceCode": "sagemaker"},
    )
    if set(applied) != set(DEFAULTS):
        extra = [_quota("ml.p5.48xlarge for training job usage", 0)]
        stub.add_response(
            "list_aws_default_service_quotas",
            {"Quotas": extra + [_quota(n, v) for n, v in DEFAULTS.items()]},
            {"ServiceCode": "sagemaker"},
        )
    stub.activate()
    return client, stub


class StubbedQuotasSession:
    """A moto session in the attendee account whose Service Quotas client is stubbed."""

    def __init__(self, session, quotas):
        self.session, self.quotas = session, quotas

    def client(self, name, **kwargs):
        return self.quotas if name == "service-quotas" else self.session.client(name, **kwargs)


@pytest.fixture
def accounts(fleet_aws):
    sessions = AssumedRoleSessions("OrganizationAccountAccessRole")
    enter = AssumedRoleSessions.__call__  # the real one, even where a test patches the class
    stubs = {}

    def factory(target: Target):
        quotas, stubs[target.account_id] = stubbed_quotas(target.account_id)
        return StubbedQuotasSession(enter(sessions, target), quotas)

    gd = sessions(Target(SUSPENDED, REGION)).client("guardduty")
    gd.create_detector(Enable=False)
    sessions(Target(READY, REGION)).client("guardduty").create_detector(Enable=True)
    return factory, stubs


def test_each_account_gets_a_verdict_with_the_reason(accounts):
    factory, stubs = accounts
    targets = [Target(a, REGION) for a in (READY, SUSPENDED, NO_QUOTA, APPLIED)]
    results = preflight(targets, factory, instance_needs(), parallel=4)
    by_account = {r.target.account_id: r for r in results}
    assert [r.target.account_id for r in results] == [READY, SUSPENDED, NO_QUOTA, APPLIED]
    assert by_account[READY].ready
    assert by_account[READY].checks["training"].detail == "ml.m5.large: 2"
    assert by_account[READY].checks["notebook"].detail == "ml.t3.medium: 20"  # a default
    suspended = by_account[SUSPENDED]
    assert not suspended.ready and not suspended.checks["guardduty"].ok
    assert "suspended" in suspended.checks["guardduty"].detail
    assert [k for k, c in suspended.checks.items() if not c.ok] == ["guardduty"]
    no_quota = by_account[NO_QUOTA]
    assert no_quota.checks["guardduty"].detail.startswith("none")
    assert [k for k, c in no_quota.checks.items() if not c.ok] == ["training"]
    assert "need 1" in no_quota.checks["training"].detail
    # an applied value wins over the default, both ways
    assert not by_account[APPLIED].checks["endpoint"].ok
    for stub in stubs.values():
        stub.assert_no_pending_responses()


def test_a_region_without_the_services_and_an_account_we_cannot_enter(accounts):
    factory, _ = accounts

    def no_entry(target):
        if target.account_id == NO_QUOTA:
            raise RuntimeError("AccessDenied: not authorized to perform sts:AssumeRole")
        return factory(target)

    offered = {"sagemaker": [REGION], "guardduty": [REGION, "xx-test-1"]}
    targets = [Target(READY, "xx-test-1"), Target(NO_QUOTA, REGION)]
    far, denied = preflight(targets, no_entry, instance_needs(), available=offered.__getitem__)
    assert not far.ready and far.checks["region"].detail == "sagemaker not offered in xx-test-1"
    assert not denied.ready and "AssumeRole" in denied.checks["access"].detail


def test_cli_prints_a_table_and_exits_1_when_an_account_is_not_ready(
    accounts, tmp_path, monkeypatch, capsys
):
    factory, _ = accounts
    monkeypatch.setattr(AssumedRoleSessions, "__call__", lambda self, target: factory(target))
    monkeypatch.setenv("COLUMNS", "200")
    roster = tmp_path / "roster.csv"
    roster.write_text(f"account_id,region,attendee\n{READY},{REGION},Ada\n{SUSPENDED},,Grace\n")
    assert main(["fleet", "preflight", "--roster", str(roster), "--region", REGION]) == 1
    out = capsys.readouterr().out
    assert "Ada" in out and "Grace" in out and "suspended" in out and "NO" in out
    assert "preflight: 1 of 2 account(s) ready" in out
    roster.write_text(f"{READY},{REGION},Ada\n")
    assert main(["fleet", "preflight", "--roster", str(roster)]) == 0
    assert "preflight: 1 of 1 account(s) ready" in capsys.readouterr().out
