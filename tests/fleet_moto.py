"""Shared pieces for the moto-backed fleet tests and the benchmark.

moto's CloudFormation creates the resources it models synchronously, but a ``Custom::``
resource makes it invoke the backing Lambda, which needs Docker, and the stack then waits in
CREATE_IN_PROGRESS for a response that never comes. The real WorkshopStack has such resources
(BucketDeployment, the GuardDuty custom resource), so these tests provision a small template with
the same interface instead: the three parameters a fleet package takes (AssetsBucketName,
AssetsBucketPrefix, ParticipantRoleName) and a ``NotebookConsoleUrl`` output (as WorkshopStack
names it). What they test is the
fleet machinery (assume-role per account, create/update/delete, concurrency, state, reports),
not the stack's resources; `fleet package` is tested against the synthesized templates.
"""

from __future__ import annotations

import json
from pathlib import Path

MARKER_PARAMETER = "/secml/fleet-test/marker"

TEMPLATE = {
    "Parameters": {
        "AssetsBucketName": {"Type": "String"},
        "AssetsBucketPrefix": {"Type": "String", "Default": ""},
        "ParticipantRoleName": {"Type": "String", "Default": ""},
    },
    "Resources": {
        "Data": {"Type": "AWS::S3::Bucket"},
        # A fixed name on purpose: a test pre-creates it in one account to make that one fail.
        "Marker": {
            "Type": "AWS::SSM::Parameter",
            "Properties": {
                "Name": MARKER_PARAMETER,
                "Type": "String",
                "Value": {"Fn::Sub": "${AssetsBucketName}/${AssetsBucketPrefix}"},
            },
        },
    },
    "Outputs": {
        "NotebookConsoleUrl": {
            "Value": {
                "Fn::Sub": "https://${AWS::Region}.console.aws.amazon.com/sagemaker/home"
                "#/notebook-instances/openNotebook/${Data}"
            }
        },
        "DataBucket": {"Value": {"Ref": "Data"}},
    },
}


def write_package(directory: Path, stack_name: str = "FleetTest") -> Path:
    """A fleet package directory (the layout `fleet package` writes) holding TEMPLATE."""
    (directory / "assets").mkdir(parents=True, exist_ok=True)
    template_name = f"{stack_name}.template.json"
    (directory / "assets" / template_name).write_text(json.dumps(TEMPLATE))
    manifest = {
        "stack_name": stack_name,
        "template": f"assets/{template_name}",
        "template_key": template_name,
        "parameters": sorted(TEMPLATE["Parameters"]),
        "assets": [],
    }
    (directory / "fleet-package.json").write_text(json.dumps(manifest))
    return directory


def account_ids(n: int, start: int = 100000000001) -> list[str]:
    return [f"{start + i:012d}" for i in range(n)]


def write_roster(path: Path, accounts: list[str], region: str = "eu-west-1") -> Path:
    lines = ["account_id,region,attendee"]
    lines += [f"{a},{region},attendee-{i}" for i, a in enumerate(accounts)]
    path.write_text("\n".join(lines) + "\n")
    return path
