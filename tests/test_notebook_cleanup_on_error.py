"""An error half-way through the notebook must not leave an endpoint billing.

"Run All" stops at the first failing cell, so the notebook's cleanup cell never runs. The helper
module records every model, endpoint configuration and endpoint it creates and deletes them from
an `atexit` hook when the kernel shuts down (an open `with` block's own cleanup runs then too,
when the interpreter closes it). This test runs the helpers in a real kernel under
nbclient against a moto server, leaves an endpoint up, fails a cell, lets nbclient shut the
kernel down, and then looks at what is left on the server.
"""

from __future__ import annotations

import sys
import textwrap

import boto3
import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tests.notebook_cells import HELPERS_PY, ROOT, reset_moto

REGION = "us-west-2"

CREATE_ENDPOINT = textwrap.dedent(
    f"""
    import sys
    sys.path[:0] = [{str(HELPERS_PY.parent)!r}, {str(ROOT)!r}]
    import boto3
    import pandas as pd
    import workshop_helpers as wh
    from tests.notebook_cells import create_notebook_role, patch_moto_gaps

    session = boto3.session.Session(region_name="us-west-2")
    patch_moto_gaps(session)
    config = {{"region": "us-west-2", "tuples_bucket": "tuples", "stack_name": "S",
               "role_arn": create_notebook_role(session)}}
    session.client("s3").create_bucket(
        Bucket="tuples", CreateBucketConfiguration={{"LocationConstraint": "us-west-2"}}
    )
    ipinsights = wh.SageMakerIPInsights(config, boto_session=session, poll_seconds=0)
    ipinsights.train(pd.DataFrame({{"principal": ["a"], "ip": ["192.0.2.1"]}}), {{}})
    hosting = ipinsights.deployed()
    hosting.__enter__()  # as if the scoring cell never got to the end of its with block
    # and one resource that no with block guards: only the atexit hook deletes it
    from sagemaker.core.resources import Model
    from sagemaker.core.shapes import ContainerDefinition
    unguarded = wh.SageMakerIPInsights(config, boto_session=session, poll_seconds=0)
    unguarded._remember(Model.create(
        model_name="secml-unguarded", execution_role_arn=config["role_arn"],
        primary_container=ContainerDefinition(image=ipinsights.image_uri), session=session,
    ))
    print(len(session.client("sagemaker").list_endpoints()["Endpoints"]), "endpoint(s) running")
    """
)


def test_kernel_shutdown_after_a_failed_cell_deletes_the_endpoint(moto_server):
    reset_moto(moto_server)
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(CREATE_ENDPOINT),
        nbformat.v4.new_code_cell("raise RuntimeError('a cell failed half-way through')"),
        nbformat.v4.new_code_cell("ipinsights.cleanup()  # the notebook's cleanup: never reached"),
    ]
    client = NotebookClient(nb, kernel_name="python3", timeout=120)
    with pytest.raises(CellExecutionError, match="failed half-way"):
        client.execute()

    created = "".join(o.get("text", "") for o in nb.cells[0].outputs)
    assert "1 endpoint(s) running" in created
    assert not nb.cells[2].outputs  # the cleanup cell did not run

    sm = boto3.client("sagemaker", region_name=REGION, endpoint_url=moto_server)
    assert sm.list_endpoints()["Endpoints"] == []
    assert sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert sm.list_models()["Models"] == []


def test_the_python3_kernel_is_this_interpreter():
    """nbclient's `python3` kernel must be the venv's python (it has the project's packages)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import sys; print(sys.executable)")]
    NotebookClient(nb, kernel_name="python3", timeout=60).execute()
    assert nb.cells[0].outputs[0]["text"].strip() == sys.executable
