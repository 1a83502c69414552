"""The whole notebook in `sagemaker` mode, top to bottom, against a moto server.

What a notebook instance would do, minus AWS: the config file names the buckets, the tuples
and findings are in them, and every SageMaker call goes to moto. moto answers InvokeEndpoint
with canned bodies, so one injected cell (before the scoring cell) queues an answer of the
right length for each request, like the built-in container would give. The scores are
therefore meaningless; what is checked is the path: what was trained on, what was created,
and that nothing billable is left.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import boto3
import nbformat
from nbclient import NotebookClient

from tests.notebook_cells import HELPERS_PY, NOTEBOOK_IPYNB, ROOT, create_notebook_role, reset_moto

REGION = "us-west-2"
DATASET = ROOT / "data" / "workshop"

# Before the training cell: the notebook's backend, on a boto3 session with moto's gaps patched
# (tests/notebook_cells.py says which and why), polling without the 30 s pause, and answering
# InvokeEndpoint like the built-in container would (moto returns queued canned bodies).
ON_MOTO = f"""
import json as _json
import os as _os
import sys as _sys
import urllib.request as _request

import boto3 as _boto3

_sys.path.insert(0, {str(ROOT)!r})
from tests.notebook_cells import patch_moto_gaps as _patch_moto_gaps

ENDPOINT_URL = _os.environ["AWS_ENDPOINT_URL"]


def _queue_answer(params, **_):
    rows = len(params["Body"].decode().splitlines())
    body = _json.dumps({{"predictions": [{{"dot_product": -float(i % 7)}} for i in range(rows)]}})
    result = {{"Body": body, "ContentType": "application/json",
              "InvokedProductionVariant": "AllTraffic", "CustomAttributes": ""}}
    request = _request.Request(
        ENDPOINT_URL + "/moto-api/static/sagemaker/endpoint-results",
        data=_json.dumps({{"region": "us-west-2", "results": [result]}}).encode(),
        headers={{"Content-Type": "application/json"}},
    )
    _request.urlopen(request).read()


_session = _boto3.session.Session(region_name="us-west-2")
_patch_moto_gaps(_session)
_session.events.register("provide-client-params.sagemaker-runtime.InvokeEndpoint", _queue_answer)
_backend = wh.ipinsights_backend
wh.ipinsights_backend = lambda backend, config: _backend(
    backend, config, boto_session=_session, poll_seconds=0
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
    reset_moto(moto_server)
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
        "role_arn": create_notebook_role(boto3.session.Session(region_name=REGION)),
    }
    (tmp_path / "workshop_config.json").write_text(json.dumps(config))
    shutil.copy(HELPERS_PY, tmp_path)  # as the on-create script does

    notebook = nbformat.read(NOTEBOOK_IPYNB, as_version=4)
    training = next(i for i, c in enumerate(notebook.cells) if "ipinsights_backend(" in c.source)
    notebook.cells.insert(training, nbformat.v4.new_code_cell(ON_MOTO))
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
    # never silent: the waits print every poll, with the elapsed time
    assert "training:  0 min 00 s  Completed" in output
    assert "endpoint:  0 min 00 s  InService" in output
    assert "threshold (percentile 1.0 of held-out normal scores)" in output
    # one training job, tagged, on the IPv4 tuples minus the pairs under investigation and
    # minus the held-out slice
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
    all_ipv4 = [
        line
        for line in (tmp_path / "train.csv").read_text().splitlines()
        if ":" not in line and line not in scored
    ]
    assert 0.85 * len(all_ipv4) < len(trained_on) < 0.95 * len(all_ipv4)  # 10 % held out
    principals = {line.split(",")[0] for line in trained_on}
    assert int(job["HyperParameters"]["num_entity_vectors"]) >= 2 * len(principals)
    # the endpoint lived only for the scoring cell
    assert "endpoints created by this notebook that still exist: none" in output
    assert sm.list_endpoints()["Endpoints"] == []
    assert sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert sm.list_models()["Models"] == []
    # the optional detection cell: the built-in's model cannot be sent, the line says how
    assert "secml export-model --out s3://secml-tuples/model/ipinsights-detection.zip" in output
    assert s3.list_objects_v2(Bucket="secml-tuples", Prefix="model/").get("Contents", []) == []
