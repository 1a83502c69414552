"""`fleet stackset`: service-managed StackSet calls, against moto and as exact request shapes."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import ANY, Stubber

from secml.cli import main
from secml.errors import SecmlError
from secml.fleet.stacks import spec_from_package
from secml.fleet.stackset import StackSetOptions, delete_stack_set, deploy_stack_set
from tests.fleet_moto import write_package

REGION = "eu-west-1"


def make_org_with_ou(n_accounts: int) -> tuple[str, list[str]]:
    org = boto3.client("organizations", region_name="us-east-1")
    org.create_organization(FeatureSet="ALL")
    root = org.list_roots()["Roots"][0]["Id"]
    ou = org.create_organizational_unit(ParentId=root, Name="attendees")["OrganizationalUnit"]["Id"]
    accounts = []
    for i in range(n_accounts):
        status = org.create_account(AccountName=f"attendee{i}", Email=f"a{i}@example.com")
        account = org.describe_create_account_status(
            CreateAccountRequestId=status["CreateAccountStatus"]["Id"]
        )["CreateAccountStatus"]["AccountId"]
        org.move_account(AccountId=account, SourceParentId=root, DestinationParentId=ou)
        accounts.append(account)
    return ou, accounts


def test_stackset_deploys_to_every_account_of_the_ou_then_updates(fleet_aws, tmp_path):
    ou, accounts = make_org_with_ou(3)
    write_package(tmp_path / "pkg")
    args = ["fleet", "stackset", "--template", str(tmp_path / "pkg"), "--ou", ou]
    args += ["--regions", "eu-west-1,us-east-1", "--assets-bucket", "assets", "--poll-seconds", "0"]
    assert main([*args, "--assets-prefix", "v1/"]) == 0

    cf = boto3.client("cloudformation", region_name=REGION)
    instances = cf.list_stack_instances(StackSetName="FleetTest")["Summaries"]
    assert sorted((i["Account"], i["Region"]) for i in instances) == sorted(
        (a, r) for a in accounts for r in ("eu-west-1", "us-east-1")
    )
    stack_set = cf.describe_stack_set(StackSetName="FleetTest")["StackSet"]
    assert stack_set["PermissionModel"] == "SERVICE_MANAGED"

    assert main([*args, "--assets-prefix", "v2/"]) == 0  # second run: update, no duplicates
    stack_set = cf.describe_stack_set(StackSetName="FleetTest")["StackSet"]
    params = {p["ParameterKey"]: p["ParameterValue"] for p in stack_set["Parameters"]}
    assert params["AssetsBucketPrefix"] == "v2/"
    assert len(cf.list_stack_instances(StackSetName="FleetTest")["Summaries"]) == 6


def test_stackset_request_shapes_with_operation_preferences(tmp_path):
    spec = spec_from_package(
        write_package(tmp_path / "pkg"), assets_bucket="ws-{region}", assets_prefix="p/"
    )
    opts = StackSetOptions(
        name="Workshop",
        ous=["ou-ab12-cdefgh34"],
        regions=["eu-west-1", "us-east-1"],
        max_concurrent_percentage=50,
        failure_tolerance_percentage=20,
        poll=0,
    )
    prefs = {
        "RegionConcurrencyType": "PARALLEL",
        "MaxConcurrentPercentage": 50,
        "FailureTolerancePercentage": 20,
    }
    cf = boto3.client(
        "cloudformation", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(cf) as stub:
        stub.add_client_error("describe_stack_set", "StackSetNotFoundException", "not found")
        stub.add_response(
            "create_stack_set",
            {"StackSetId": "Workshop:1"},
            {
                "StackSetName": "Workshop",
                "Description": ANY,
                "PermissionModel": "SERVICE_MANAGED",
                "AutoDeployment": {"Enabled": True, "RetainStacksOnAccountRemoval": False},
                "ManagedExecution": {"Active": True},
                "CallAs": "SELF",
                "Tags": ANY,
                "TemplateBody": spec.template_body,
                "Capabilities": [
                    "CAPABILITY_IAM",
                    "CAPABILITY_NAMED_IAM",
                    "CAPABILITY_AUTO_EXPAND",
                ],
                "Parameters": [
                    {"ParameterKey": "AssetsBucketName", "ParameterValue": "ws-eu-west-1"},
                    {"ParameterKey": "AssetsBucketPrefix", "ParameterValue": "p/"},
                ],
            },
        )
        # {region} in the bucket: one instance operation per region, each overriding the bucket.
        for i, region in enumerate(opts.regions):
            stub.add_response(
                "create_stack_instances",
                {"OperationId": f"op-{i}"},
                {
                    "StackSetName": "Workshop",
                    "DeploymentTargets": {"OrganizationalUnitIds": ["ou-ab12-cdefgh34"]},
                    "Regions": [region],
                    "ParameterOverrides": [
                        {"ParameterKey": "AssetsBucketName", "ParameterValue": f"ws-{region}"}
                    ],
                    "OperationPreferences": prefs,
                    "CallAs": "SELF",
                },
            )
            stub.add_response(
                "describe_stack_set_operation",
                {"StackSetOperation": {"OperationId": f"op-{i}", "Status": "SUCCEEDED"}},
                {"StackSetName": "Workshop", "OperationId": f"op-{i}", "CallAs": "SELF"},
            )
        assert deploy_stack_set(cf, spec, opts) == "created"
        stub.assert_no_pending_responses()

    with Stubber(cf) as stub:
        stub.add_response("describe_stack_set", {"StackSet": {"StackSetName": "Workshop"}})
        stub.add_response(
            "list_stack_instances",
            {
                "Summaries": [
                    {
                        "Account": "111111111111",
                        "Region": r,
                        "OrganizationalUnitId": "ou-ab12-cdefgh34",
                    }
                    for r in ("eu-west-1", "us-east-1")
                ]
            },
        )
        stub.add_response(
            "delete_stack_instances",
            {"OperationId": "op-del"},
            {
                "StackSetName": "Workshop",
                "DeploymentTargets": {"OrganizationalUnitIds": ["ou-ab12-cdefgh34"]},
                "Regions": ["eu-west-1", "us-east-1"],
                "RetainStacks": False,
                "OperationPreferences": prefs,
                "CallAs": "SELF",
            },
        )
        stub.add_response(
            "describe_stack_set_operation",
            {"StackSetOperation": {"OperationId": "op-del", "Status": "RUNNING"}},
        )
        stub.add_response(
            "describe_stack_set_operation",
            {"StackSetOperation": {"OperationId": "op-del", "Status": "SUCCEEDED"}},
        )
        stub.add_response("delete_stack_set", {}, {"StackSetName": "Workshop", "CallAs": "SELF"})
        assert (
            delete_stack_set(
                cf,
                StackSetOptions(
                    name="Workshop",
                    ous=[],
                    regions=[],
                    max_concurrent_percentage=50,
                    failure_tolerance_percentage=20,
                    poll=0,
                ),
            )
            == 2
        )
        stub.assert_no_pending_responses()


def test_failed_operation_names_the_failing_accounts(tmp_path):
    spec = spec_from_package(write_package(tmp_path / "pkg"), assets_bucket="b")
    opts = StackSetOptions(name="W", ous=["r-ab12"], regions=["eu-west-1"], poll=0)
    cf = boto3.client(
        "cloudformation", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(cf) as stub:
        stub.add_response("describe_stack_set", {"StackSet": {"StackSetName": "W"}})
        stub.add_response("update_stack_set", {"OperationId": "op-1"})
        stub.add_response(
            "describe_stack_set_operation",
            {"StackSetOperation": {"OperationId": "op-1", "Status": "FAILED", "Action": "UPDATE"}},
        )
        stub.add_response(
            "list_stack_set_operation_results",
            {
                "Summaries": [
                    {
                        "Account": "222222222222",
                        "Region": "eu-west-1",
                        "Status": "FAILED",
                        "StatusReason": "Lambda: bucket not found",
                    },
                    {"Account": "333333333333", "Region": "eu-west-1", "Status": "SUCCEEDED"},
                ]
            },
        )
        with pytest.raises(SecmlError, match="222222222222/eu-west-1: Lambda: bucket not found"):
            deploy_stack_set(cf, spec, opts)


def test_bad_ou_and_percentages_are_user_errors():
    with pytest.raises(SecmlError, match="not an OU"):
        StackSetOptions(name="W", ous=["ou-x"], regions=["eu-west-1"]).validate()
    with pytest.raises(SecmlError, match="between 0 and 100"):
        StackSetOptions(
            name="W", ous=["r-ab12"], regions=["eu-west-1"], failure_tolerance_percentage=150
        ).validate()
