"""An error half-way through the notebook must not leave an endpoint billing.

"Run All" stops at the first failing cell, so the notebook's last cell (cleanup) never runs.
The notebook records every model, endpoint configuration and endpoint it creates and deletes
them from an `atexit` hook when the kernel shuts down. This test runs the notebook's helper
cells in a real kernel under nbclient against a moto server, fails a cell, lets nbclient shut
the kernel down, and then looks at what is left on the server.
"""

from __future__ import annotations

import sys
import textwrap

import boto3
import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tests.notebook_cells import tagged_source

REGION = "us-west-2"

CREATE_RESOURCES = textwrap.dedent(
    """
    import boto3

    sm = boto3.client("sagemaker")
    tags = stack_tags("SecmlWorkshop")
    model = resource_name("ipinsights-model")
    config = resource_name("ipinsights-config")
    endpoint = resource_name("ipinsights")
    sm.create_model(
        ModelName=model,
        PrimaryContainer={"Image": ipinsights_image_uri("us-west-2")},
        ExecutionRoleArn="arn:aws:iam::123456789012:role/secml-notebook",
        Tags=tags,
    )
    _remember("model", model, sm)
    sm.create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": model,
                             "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}],
        Tags=tags,
    )
    _remember("endpoint_config", config, sm)
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config, Tags=tags)
    _remember("endpoint", endpoint, sm)
    print(len(sm.list_endpoints()["Endpoints"]), "endpoint(s) running")
    """
)


def test_kernel_shutdown_after_a_failed_cell_deletes_the_endpoint(moto_server):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(tagged_source("helpers")),
        nbformat.v4.new_code_cell(tagged_source("sagemaker-helpers")),
        nbformat.v4.new_code_cell(CREATE_RESOURCES),
        nbformat.v4.new_code_cell("raise RuntimeError('a cell failed half-way through')"),
        nbformat.v4.new_code_cell("cleanup()  # the notebook's last cell: never reached"),
    ]
    client = NotebookClient(nb, kernel_name="python3", timeout=120)
    with pytest.raises(CellExecutionError, match="failed half-way"):
        client.execute()

    created = "".join(o.get("text", "") for o in nb.cells[2].outputs)
    assert "1 endpoint(s) running" in created
    assert not nb.cells[4].outputs  # the cleanup cell did not run

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
