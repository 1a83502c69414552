"""The whole notebook in `sagemaker` mode, top to bottom, against a moto server.

What a notebook instance would do, minus AWS: the config file names the buckets, the tuples
and findings are in them, and every SageMaker call goes to moto. moto answers InvokeEndpoint
with canned bodies, so one injected cell (before the scoring cell) queues an answer of the
right length for each request, like the built-in container would give. The scores are
therefore meaningless; what is checked is the path: what was trained on, what was created,
and that nothing billable is left.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys

import boto3
import nbformat
import pytest
from nbclient import NotebookClient

from tests.notebook_cells import NOTEBOOK_IPYNB, ROOT, notebook_boto3_version

REGION = "us-west-2"
DATASET = ROOT / "data" / "workshop"

ANSWER_LIKE_IPINSIGHTS = """
import json as _json
import urllib.request as _request

def _queue_answer(params, **_):
    rows = len(params["Body"].decode().splitlines())
    body = _json.dumps({"predictions": [{"dot_product": -float(i % 7)} for i in range(rows)]})
    result = {"Body": body, "ContentType": "application/json",
              "InvokedProductionVariant": "AllTraffic", "CustomAttributes": ""}
    request = _request.Request(
        ENDPOINT_URL + "/moto-api/static/sagemaker/endpoint-results",
        data=_json.dumps({"region": "us-west-2", "results": [result]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    _request.urlopen(request).read()

ENDPOINT_URL = os.environ["AWS_ENDPOINT_URL"]
runtime.meta.events.register(
    "provide-client-params.sagemaker-runtime.InvokeEndpoint", _queue_answer
)
"""


def secml_tuples(kind: str, source, out) -> None:
    subprocess.run(
        [sys.executable, "-m", "secml", "tuples", kind, str(source), "--out", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )


def test_the_sagemaker_path_runs_top_to_bottom_and_leaves_nothing_billing(moto_server, tmp_path):
    pytest.importorskip("secml.tuples")
    # The notebook's first cells pip-install its pinned boto3 when the kernel has another one;
    # that must never happen to the project's venv.
    assert importlib.metadata.version("boto3") == notebook_boto3_version()
    s3 = boto3.client("s3", region_name=REGION)
    sm = boto3.client("sagemaker", region_name=REGION)
    for bucket in ("secml-data", "secml-tuples"):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    secml_tuples("cloudtrail", DATASET / "cloudtrail", tmp_path / "train.csv")
    secml_tuples("guardduty", DATASET / "guardduty", tmp_path / "infer.csv")
    s3.upload_file(str(tmp_path / "train.csv"), "secml-tuples", "train/cloudtrail_tuples.csv")
    s3.upload_file(str(tmp_path / "infer.csv"), "secml-tuples", "infer/guardduty_tuples.csv")
    for name in ("guardduty/findings.json", "truth.csv"):
        s3.upload_file(str(DATASET / name), "secml-data", name)
    config = {
        "stack_name": "SecmlWorkshop",
        "region": REGION,
        "data_bucket": "secml-data",
        "tuples_bucket": "secml-tuples",
        "train_key": "train/cloudtrail_tuples.csv",
        "infer_key": "infer/guardduty_tuples.csv",
        "truth_key": "truth.csv",
        "role_arn": "arn:aws:iam::123456789012:role/secml-notebook",
    }
    (tmp_path / "workshop_config.json").write_text(json.dumps(config))

    notebook = nbformat.read(NOTEBOOK_IPYNB, as_version=4)
    scoring = next(i for i, c in enumerate(notebook.cells) if "with deployed_endpoint(" in c.source)
    notebook.cells.insert(scoring, nbformat.v4.new_code_cell(ANSWER_LIKE_IPINSIGHTS))
    NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    output = "\n".join(
        o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs
    )

    assert "backend: sagemaker" in output
    assert "IPv6 tuples left out for the built-in" in output
    # one training job, tagged, on the IPv4 tuples minus the pairs under investigation
    (summary,) = sm.list_training_jobs()["TrainingJobSummaries"]
    job = sm.describe_training_job(TrainingJobName=summary["TrainingJobName"])
    assert job["TrainingJobName"].startswith("secml-ipinsights-")
    assert job["HyperParameters"]["vector_dim"] == "128"
    tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=job["TrainingJobArn"])["Tags"]}
    assert tags["secml:stack"] == "SecmlWorkshop"
    channel_uri = job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
    bucket, key = channel_uri[len("s3://") :].split("/", 1)
    trained_on = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
    scored = set((tmp_path / "infer.csv").read_text().splitlines())
    assert trained_on and not scored & set(trained_on)
    assert all(":" not in line.split(",")[1] for line in trained_on)  # IPv4 only
    principals = {line.split(",")[0] for line in trained_on}
    assert int(job["HyperParameters"]["num_entity_vectors"]) >= 2 * len(principals)
    # the endpoint lived only for the scoring cell
    assert "endpoints created by this notebook that still exist: none" in output
    assert sm.list_endpoints()["Endpoints"] == []
    assert sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert sm.list_models()["Models"] == []
