"""The workshop notebook and its helper module, for tests; and what moto lacks to host the SDK."""

from __future__ import annotations

import importlib.util
import json
import sys
import urllib.request
from pathlib import Path
from types import ModuleType, SimpleNamespace

import jupytext

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_PY = ROOT / "notebooks" / "ip_insights_workshop.py"
NOTEBOOK_IPYNB = ROOT / "notebooks" / "ip_insights_workshop.ipynb"
HELPERS_PY = ROOT / "notebooks" / "workshop_helpers.py"
ROLE_NAME = "secml-notebook"


def tagged_source(tag: str) -> str:
    cells = [c for c in jupytext.read(NOTEBOOK_PY).cells if tag in c.metadata.get("tags", [])]
    assert cells, f"no cell tagged {tag!r} in {NOTEBOOK_PY.name}"
    return "\n\n".join(c.source for c in cells)


def code_cells() -> list[str]:
    return [c.source for c in jupytext.read(NOTEBOOK_PY).cells if c.cell_type == "code"]


def load_helpers() -> ModuleType:
    """A fresh import of notebooks/workshop_helpers.py, as the notebook imports it."""
    spec = importlib.util.spec_from_file_location("workshop_helpers", HELPERS_PY)
    module = importlib.util.module_from_spec(spec)
    sys.modules["workshop_helpers"] = module
    spec.loader.exec_module(module)
    return module


# moto has no iam:SimulatePrincipalPolicy, which the SDK v3's ModelTrainer calls to check the
# training role (sagemaker/core/helper/iam_role_resolver.py). The notebook's role may not call
# it either, and there AWS answers AccessDenied, which the SDK takes as "cannot verify" and
# goes on: answer what AWS answers the notebook, for this one call only.
def deny_simulate_principal_policy(**_):
    error = {"Code": "AccessDenied", "Message": "not authorized: iam:SimulatePrincipalPolicy"}
    return SimpleNamespace(status_code=403), {"Error": error, "ResponseMetadata": {}}


# moto answers Describe* with empty VpcConfig / DataCaptureConfig objects where AWS leaves the
# field out, and sagemaker-core's pydantic shapes refuse an empty VpcConfig (its SecurityGroupIds
# and Subnets are required): drop exactly those empty objects, as AWS would send them.
MOTO_EMPTY_FIELDS = ("VpcConfig", "DataCaptureConfig")


def drop_empty_fields(parsed: dict, **_) -> None:
    for field in MOTO_EMPTY_FIELDS:
        if parsed.get(field) == {}:
            del parsed[field]


def patch_moto_gaps(boto_session) -> None:
    """Register both answers on a boto3 session, before the SDK makes clients from it."""
    boto_session.events.register(
        "before-call.iam.SimulatePrincipalPolicy", deny_simulate_principal_policy
    )
    boto_session.events.register("after-call.sagemaker.*", drop_empty_fields)


def create_notebook_role(boto_session) -> str:
    """The notebook's execution role, trusted by SageMaker (the SDK reads its trust policy)."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sagemaker.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    iam = boto_session.client("iam")
    try:
        role = iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))
    except iam.exceptions.EntityAlreadyExistsException:  # moto's state outlives one server
        role = iam.get_role(RoleName=ROLE_NAME)
    return role["Role"]["Arn"]


def reset_moto(url: str) -> None:
    """Forget what earlier tests left: moto servers in one process share their state."""
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST")).read()
