# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: conda_python3
#     language: python
#     name: conda_python3
# ---

# %% [markdown]
# # Exercise 3: IP-based anomaly detection with IP Insights
#
# In exercise 2 two Lambda functions turned CloudTrail logs and GuardDuty findings into
# `<principal ID, IP address>` tuples. In this notebook you will:
#
# 1. load both tuple files and look at them;
# 2. train **IP Insights** on the CloudTrail tuples: it learns which principals normally use
#    which IP addresses;
# 3. score the CloudTrail tuples and the GuardDuty tuples with the trained model;
# 4. compare the two score distributions and pick a threshold;
# 5. rank the GuardDuty findings by how unusual their IP address is for their principal;
# 6. clean up everything that costs money.
#
# Run the cells one by one (Shift+Enter) and read the short explanation above each.
#
# **Two backends, one notebook.** On the workshop's SageMaker notebook instance the notebook
# trains SageMaker's built-in IP Insights algorithm and hosts it on a real-time endpoint
# (`BACKEND = "sagemaker"`). Anywhere else (a laptop, CI, `make demo`) it runs the same steps
# with the project's local re-implementation of IP Insights and no AWS account
# (`BACKEND = "local"`). The environment variable `SECML_BACKEND` overrides the choice.

# %% [markdown]
# ## 1. Where am I, and what was provisioned for me?
#
# The workshop stack wrote `workshop_config.json` next to this notebook: the names of the
# buckets, the region and the stack's name. Nothing to copy or paste.

# %%
import json
import os
from pathlib import Path

# "sagemaker", "local", or None: detect (a notebook instance means "sagemaker"), unless the
# environment variable SECML_BACKEND says otherwise.
BACKEND = None

NOTEBOOK_INSTANCE_METADATA = Path("/opt/ml/metadata/resource-metadata.json")
CONFIG_CANDIDATES = [
    Path(os.environ.get("SECML_WORKSHOP_CONFIG", "workshop_config.json")),
    Path("/home/ec2-user/SageMaker/workshop_config.json"),
]
CONFIG_PATH = next((p for p in CONFIG_CANDIDATES if p.is_file()), None)
CONFIG = json.loads(CONFIG_PATH.read_text()) if CONFIG_PATH else {}

on_notebook_instance = NOTEBOOK_INSTANCE_METADATA.is_file() or CONFIG_PATH is not None
BACKEND = (
    BACKEND or os.environ.get("SECML_BACKEND") or ("sagemaker" if on_notebook_instance else "local")
)
if BACKEND not in ("sagemaker", "local"):
    raise ValueError(f"SECML_BACKEND must be 'sagemaker' or 'local', not {BACKEND!r}")

print(f"backend: {BACKEND}")
print(f"config:  {CONFIG_PATH or '(none)'}")
for key, value in CONFIG.items():
    print(f"  {key}: {value}")

# %% [markdown]
# On the notebook instance the only library this notebook needs beyond the kernel's pandas,
# numpy and matplotlib is **boto3**, the AWS SDK for Python. We pin the exact version the
# project is tested with, so what you run is what was tested. (Why boto3 and not the
# SageMaker Python SDK? See "SageMaker SDK decision" in the project's README.)

# %%
import importlib.metadata
import subprocess
import sys

BOTO3_VERSION = "1.44.5"

if BACKEND == "sagemaker":
    try:
        installed = importlib.metadata.version("boto3")
    except importlib.metadata.PackageNotFoundError:
        installed = None
    if installed != BOTO3_VERSION:
        print(f"installing boto3=={BOTO3_VERSION} (found {installed})")
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        if subprocess.call([*pip, f"boto3=={BOTO3_VERSION}"]) != 0:
            # Every API this notebook calls has been in boto3 for years: carry on.
            print(f"could not install boto3=={BOTO3_VERSION}; using the kernel's boto3")
    print(f"boto3 {importlib.metadata.version('boto3')}")

# %% [markdown]
# ### Settings
#
# The hyperparameters are the ones used by the public IP Insights tutorial. The number of
# entity vectors is set from the data below: twice the number of distinct principals, as
# SageMaker suggests, but at least 20,000 (the original workshop's value). Principals are
# hashed into these vectors, and with only a few dozen vectors some principals would share
# one and look like a single user.

# %%
HYPERPARAMETERS = {
    "vector_dim": 128,
    "random_negative_sampling_rate": 5,
    "mini_batch_size": 1000,
    "epochs": 5,
    "learning_rate": 0.01,
}
MIN_ENTITY_VECTORS = 20_000
# Score at most this many training tuples to draw the "normal" score distribution.
TRAINING_SAMPLE_SIZE = 20_000
# GuardDuty tuples scoring below this percentile of the training scores are flagged.
THRESHOLD_PERCENTILE = 1.0
# Train without the tuples we are about to judge (see step 2, "Keep the activity under
# investigation out of training"). Set it to False once to see why it matters.
EXCLUDE_SCORED_TUPLES = True

TRAINING_INSTANCE_TYPE = CONFIG.get("training_instance_type", "ml.m5.large")
ENDPOINT_INSTANCE_TYPE = CONFIG.get("endpoint_instance_type", "ml.m5.large")

# %% [markdown]
# ### Helper functions
#
# Plain pandas and numpy: reading the tuple files, finding the principal and IP address inside
# a GuardDuty finding, and measuring a ranking. Skim them now, or come back later.

# %% tags=["helpers"]
import io
import ipaddress
import json

import numpy as np
import pandas as pd


def read_tuples(data: bytes) -> pd.DataFrame:
    """Parse a `principal,ip` CSV.

    The Lambda functions write the files without a header row: `header=None` matters. Without
    it pandas silently turns the first tuple into column names and drops it from the data.
    """
    frame = pd.read_csv(
        io.BytesIO(data),
        header=None,
        names=["principal", "ip"],
        dtype=str,
        keep_default_na=False,
    )
    return frame


def ip_version(ip: str) -> int:
    return ipaddress.ip_address(ip).version


# GuardDuty puts the remote address of a finding under one of these actions.
REMOTE_IP_ACTIONS = (
    "AwsApiCallAction",
    "NetworkConnectionAction",
    "KubernetesApiCallAction",
    "RdsLoginAttemptAction",
)


def _get(obj, key: str):
    """obj[key] in either casing GuardDuty uses ("Service" in the API, "service" in events)."""
    if not isinstance(obj, dict):
        return None
    value = obj.get(key)
    return obj.get(key[0].lower() + key[1:]) if value is None else value


def _canonical_ip(value) -> "str | None":
    try:
        address = ipaddress.ip_address(str(value).strip())
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


def finding_tuples(finding: dict) -> list[tuple[str, str]]:
    """The `(principal, ip)` pairs a finding is about, as the GuardDuty ingest Lambda finds them.

    The principal is the access key's PrincipalId up to the first ':' (what follows is a session
    name); addresses are written in canonical form so they match the tuple files.
    """
    principal_id = _get(_get(_get(finding, "Resource"), "AccessKeyDetails"), "PrincipalId")
    principal = str(principal_id or "").partition(":")[0].strip()
    if not principal or "," in principal or '"' in principal:
        return []
    action = _get(_get(finding, "Service"), "Action")
    details = [_get(_get(action, name), "RemoteIpDetails") for name in REMOTE_IP_ACTIONS]
    for probe in _get(_get(action, "PortProbeAction"), "PortProbeDetails") or []:
        details.append(_get(probe, "RemoteIpDetails"))
    ips = []
    for detail in details:
        for field in ("IpAddressV4", "IpAddressV6"):
            ip = _canonical_ip(_get(detail, field))
            if ip and ip not in ips:
                ips.append(ip)
    return [(principal, ip) for ip in ips]


def findings_frame(findings: list[dict]) -> pd.DataFrame:
    """One row per (finding, principal, ip), with the columns an analyst reads first."""
    rows = []
    for finding in findings:
        service = _get(finding, "Service")
        for principal, ip in finding_tuples(finding):
            rows.append(
                {
                    "finding_id": _get(finding, "Id"),
                    "finding_type": _get(finding, "Type"),
                    "time": _get(service, "EventLastSeen") or _get(finding, "UpdatedAt"),
                    "severity": _get(finding, "Severity"),
                    "principal": principal,
                    "ip": ip,
                }
            )
    columns = ["finding_id", "finding_type", "time", "severity", "principal", "ip"]
    return pd.DataFrame(rows, columns=columns)


def roc_auc(scores, is_positive) -> float:
    """Probability that a random positive scores below a random negative (ties count half).

    Low dot products are anomalous, so a perfect detector has AUC 1.0 here.
    """
    scores = np.asarray(scores, dtype=float)
    positive = np.asarray(is_positive, dtype=bool)
    pos, neg = scores[positive], scores[~positive]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    below = (pos[:, None] < neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(below / (len(pos) * len(neg)))


POSITIVE_LABELS = {"1", "true", "malicious", "anomalous", "attack", "positive"}


def is_malicious(label) -> bool:
    return str(label).strip().lower() in POSITIVE_LABELS


# %% [markdown]
# ### SageMaker helper functions
#
# These drive SageMaker with boto3: one function per step (train, deploy, invoke, delete).
# Three things deserve attention:
#
# * **Cost.** A real-time endpoint is billed every second it exists, whether or not anyone
#   calls it. `deployed_endpoint` deletes the endpoint, its configuration and the model as
#   soon as the `with` block that uses it ends, *even when a cell fails or you interrupt it*.
#   As a second safety net every resource is recorded and deleted when the kernel shuts down
#   (`atexit`) and by the cleanup cell at the end of the notebook.
# * **Request size.** One `InvokeEndpoint` request may carry at most 6 MB, so the tuples are
#   sent in chunks well below that.
# * **Names and tags.** Everything is named `secml-...` and tagged `secml:stack` with the
#   stack's name, so the facilitator's teardown can find anything left behind.

# %% tags=["sagemaker-helpers"]
import atexit
import contextlib
import time
import uuid

from botocore.exceptions import WaiterError

# Account that hosts the built-in IP Insights image in each region (the SageMaker Python SDK's
# `image_uris.retrieve("ipinsights", region)` reads the same table from
# sagemaker/core/image_uri_config/ipinsights.json, sagemaker-core 2.27.0).
IPINSIGHTS_REGISTRIES = {
    "af-south-1": "455444449433",
    "ap-east-1": "286214385809",
    "ap-northeast-1": "351501993468",
    "ap-northeast-2": "835164637446",
    "ap-northeast-3": "867004704886",
    "ap-south-1": "991648021394",
    "ap-south-2": "628508329040",
    "ap-southeast-1": "475088953585",
    "ap-southeast-2": "712309505854",
    "ap-southeast-3": "951798379941",
    "ap-southeast-4": "106583098589",
    "ca-central-1": "469771592824",
    "ca-west-1": "190319476487",
    "cn-north-1": "390948362332",
    "cn-northwest-1": "387376663083",
    "eu-central-1": "664544806723",
    "eu-central-2": "680994064768",
    "eu-north-1": "669576153137",
    "eu-south-1": "257386234256",
    "eu-south-2": "104374241257",
    "eu-west-1": "438346466558",
    "eu-west-2": "644912444149",
    "eu-west-3": "749696950732",
    "il-central-1": "898809789911",
    "me-central-1": "272398656194",
    "me-south-1": "249704162688",
    "sa-east-1": "855470959533",
    "us-east-1": "382416733822",
    "us-east-2": "404615174143",
    "us-gov-east-1": "237065988967",
    "us-gov-west-1": "226302683700",
    "us-west-1": "632365934929",
    "us-west-2": "174872318107",
}

# One InvokeEndpoint request may carry at most 6 MB; stay well below it.
MAX_REQUEST_BYTES = 5_000_000
MAX_REQUEST_ROWS = 5_000


def ipinsights_image_uri(region: str) -> str:
    try:
        account = IPINSIGHTS_REGISTRIES[region]
    except KeyError:
        raise ValueError(f"IP Insights is not available in region {region!r}") from None
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{domain}/ipinsights:1"


def resource_name(purpose: str) -> str:
    """`secml-<purpose>-<UTC time>-<random>`: unique, sortable, at most 63 characters."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return f"secml-{purpose}-{stamp}-{uuid.uuid4().hex[:4]}"[:63]


def stack_tags(stack_name: str) -> list[dict]:
    return [
        {"Key": "secml:stack", "Value": stack_name},
        {"Key": "secml:created-by", "Value": "ip_insights_workshop"},
    ]


# Everything this kernel created that is billed while it exists and not yet deleted.
CREATED = {"endpoint": [], "endpoint_config": [], "model": []}
# Every endpoint this kernel ever created, for the final check.
ENDPOINTS_EVER = []
_CLEANUP_CLIENT = {}


def _remember(kind: str, name: str, sm) -> None:
    CREATED[kind].append(name)
    if kind == "endpoint":
        ENDPOINTS_EVER.append(name)
    if not _CLEANUP_CLIENT:
        atexit.register(cleanup)
    _CLEANUP_CLIENT["sm"] = sm


def _delete(sm, kind: str, name: str) -> str:
    delete = {
        "endpoint": lambda: sm.delete_endpoint(EndpointName=name),
        "endpoint_config": lambda: sm.delete_endpoint_config(EndpointConfigName=name),
        "model": lambda: sm.delete_model(ModelName=name),
    }[kind]
    try:
        delete()
        return "deleted"
    except sm.exceptions.ClientError as exc:
        message = str(exc)
        if "Could not find" in message or "does not exist" in message:
            return "already gone"
        if kind == "endpoint" and ("Creating" in message or "Updating" in message):
            # An endpoint in the middle of a change cannot be deleted: wait until it is
            # InService (or Failed, which the waiter reports as an error), then delete it.
            print(f"cleanup: waiting for endpoint {name} to settle before deleting it")
            with contextlib.suppress(WaiterError):
                sm.get_waiter("endpoint_in_service").wait(
                    EndpointName=name, WaiterConfig={"Delay": 30, "MaxAttempts": 40}
                )
            delete()
            return "deleted"
        raise


def cleanup(sm=None) -> list[tuple[str, str, str]]:
    """Delete every endpoint, endpoint configuration and model this kernel created.

    Safe to call more than once; returns (kind, name, outcome) for each resource.
    """
    sm = sm or _CLEANUP_CLIENT.get("sm")
    report = []
    if sm is None:
        return report
    for kind in ("endpoint", "endpoint_config", "model"):
        while CREATED[kind]:
            name = CREATED[kind][0]
            try:
                outcome = _delete(sm, kind, name)
            except Exception as exc:  # report and keep deleting the rest
                outcome = f"FAILED: {exc}"
            CREATED[kind].pop(0)
            report.append((kind, name, outcome))
            print(f"cleanup: {kind} {name}: {outcome}")
    return report


def endpoints_still_there(sm) -> list[str]:
    """Which endpoints this kernel created still exist (should be none after cleanup)."""
    alive = []
    for name in ENDPOINTS_EVER:
        try:
            status = sm.describe_endpoint(EndpointName=name)["EndpointStatus"]
        except sm.exceptions.ClientError as exc:
            if "Could not find" in str(exc):
                continue
            raise
        alive.append(f"{name} ({status})")
    return alive


def train_ipinsights(
    sm,
    *,
    job_name: str,
    image_uri: str,
    role_arn: str,
    train_s3_uri: str,
    output_s3_uri: str,
    hyperparameters: dict,
    instance_type: str,
    tags: list[dict],
    poll_seconds: int = 30,
) -> str:
    """Run a training job to completion; return the S3 URI of the model artifacts."""
    sm.create_training_job(
        TrainingJobName=job_name,
        AlgorithmSpecification={"TrainingImage": image_uri, "TrainingInputMode": "File"},
        RoleArn=role_arn,
        HyperParameters={k: str(v) for k, v in hyperparameters.items()},
        InputDataConfig=[
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": train_s3_uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "ContentType": "text/csv",
            }
        ],
        OutputDataConfig={"S3OutputPath": output_s3_uri},
        ResourceConfig={"InstanceType": instance_type, "InstanceCount": 1, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
        Tags=tags,
    )
    print(f"training job {job_name} started; this takes about 5 minutes")
    sm.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName=job_name, WaiterConfig={"Delay": poll_seconds, "MaxAttempts": 120}
    )
    job = sm.describe_training_job(TrainingJobName=job_name)
    if job["TrainingJobStatus"] != "Completed":
        raise RuntimeError(
            f"training job {job_name} ended {job['TrainingJobStatus']}: "
            f"{job.get('FailureReason', 'no reason given')}"
        )
    return job["ModelArtifacts"]["S3ModelArtifacts"]


@contextlib.contextmanager
def deployed_endpoint(
    sm,
    *,
    model_data_uri: str,
    image_uri: str,
    role_arn: str,
    instance_type: str,
    tags: list[dict],
    poll_seconds: int = 30,
):
    """Model -> endpoint configuration -> endpoint, deleted again when the block ends."""
    model_name = resource_name("ipinsights-model")
    config_name = resource_name("ipinsights-config")
    endpoint_name = resource_name("ipinsights")
    try:
        sm.create_model(
            ModelName=model_name,
            PrimaryContainer={"Image": image_uri, "ModelDataUrl": model_data_uri},
            ExecutionRoleArn=role_arn,
            Tags=tags,
        )
        _remember("model", model_name, sm)
        sm.create_endpoint_config(
            EndpointConfigName=config_name,
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": model_name,
                    "InitialInstanceCount": 1,
                    "InstanceType": instance_type,
                    "InitialVariantWeight": 1.0,
                }
            ],
            Tags=tags,
        )
        _remember("endpoint_config", config_name, sm)
        sm.create_endpoint(EndpointName=endpoint_name, EndpointConfigName=config_name, Tags=tags)
        _remember("endpoint", endpoint_name, sm)
        print(f"endpoint {endpoint_name} is being created; this takes about 5-8 minutes")
        sm.get_waiter("endpoint_in_service").wait(
            EndpointName=endpoint_name,
            WaiterConfig={"Delay": poll_seconds, "MaxAttempts": 60},
        )
        print(f"endpoint {endpoint_name} is in service")
        yield endpoint_name
    finally:
        cleanup(sm)


def csv_request_bodies(
    pairs: pd.DataFrame, max_bytes: int = MAX_REQUEST_BYTES, max_rows: int = MAX_REQUEST_ROWS
):
    """Yield `(row_count, body)` CSV chunks of `principal,ip` lines, each under the limits."""
    lines, size = [], 0
    for principal, ip in pairs[["principal", "ip"]].itertuples(index=False, name=None):
        line = f"{principal},{ip}\n".encode()
        if lines and (size + len(line) > max_bytes or len(lines) >= max_rows):
            yield len(lines), b"".join(lines)
            lines, size = [], 0
        lines.append(line)
        size += len(line)
    if lines:
        yield len(lines), b"".join(lines)


def invoke_in_chunks(runtime, endpoint_name: str, pairs: pd.DataFrame) -> np.ndarray:
    """Dot products for every row of `pairs`, in order, in requests under 6 MB."""
    scores = []
    for rows, body in csv_request_bodies(pairs):
        response = runtime.invoke_endpoint(
            EndpointName=endpoint_name,
            ContentType="text/csv",
            Accept="application/json",
            Body=body,
        )
        predictions = json.loads(response["Body"].read())["predictions"]
        if len(predictions) != rows:
            raise RuntimeError(f"sent {rows} tuples, got {len(predictions)} predictions")
        scores.extend(p["dot_product"] for p in predictions)
    return np.asarray(scores, dtype=float)


def ipv4_only(pairs: pd.DataFrame) -> pd.DataFrame:
    """The built-in algorithm accepts IPv4 addresses only."""
    return pairs[pairs["ip"].map(ip_version) == 4]


# %% [markdown]
# ## 2. Load and inspect the tuples
#
# Training data: `train/cloudtrail_tuples.csv` (CloudTrail, exercise 2.1). Data to score:
# `infer/guardduty_tuples.csv` (GuardDuty findings, exercise 2.2). Both are in the tuples
# bucket. The GuardDuty findings themselves are read too, to show the finding type and time
# next to each score at the end.
#
# *Offline (`local`) the notebook reads the same files from the embedded S3 of `make demo`
# (`SECML_TUPLES_BUCKET`), from a folder (`SECML_TUPLES_DIR`), or builds them from the
# workshop dataset in `data/workshop/` with the project's own tuple code.*

# %% tags=["data-sources"]
import atexit
import shutil
import tempfile


def s3_client():
    import boto3

    return boto3.session.Session(region_name=CONFIG.get("region")).client("s3")


def read_object(location: str, key: str) -> "bytes | None":
    """Bytes of `key` under `location` (`s3://bucket` or a folder); None if it is absent."""
    if location.startswith("s3://"):
        s3 = s3_client()
        try:
            return s3.get_object(Bucket=location[5:], Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None
    path = Path(location) / key
    return path.read_bytes() if path.is_file() else None


def json_documents(location: str, prefix: str) -> list:
    if location.startswith("s3://"):
        s3, bucket = s3_client(), location[5:]
        keys = [
            item["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])
            if item["Key"].endswith(".json")
        ]
    else:
        keys = [str(p.relative_to(location)) for p in sorted(Path(location, prefix).glob("*.json"))]
    return [json.loads(read_object(location, key)) for key in keys]


def project_root() -> Path:
    for folder in [Path.cwd(), *Path.cwd().parents]:
        if (folder / "secml").is_dir() and (folder / "notebooks").is_dir():
            return folder
    raise FileNotFoundError("the local backend runs inside the secml-detection repository")


def run_secml(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "secml", *args], cwd=project_root(), check=True)


def scratch_folder(prefix: str) -> str:
    """A temporary folder, removed when the kernel exits."""
    folder = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def local_locations() -> tuple[str, str]:
    """Where the offline run finds the tuples and the dataset (findings, truth.csv).

    Tuples: the embedded S3 of `make demo` (SECML_TUPLES_BUCKET, with AWS_ENDPOINT_URL), a
    folder (SECML_TUPLES_DIR), or else built here from the dataset with the project's tuple
    code. Dataset: SECML_DATA_BUCKET, SECML_DATA_DIR, data/workshop/, or else generated.
    """
    if os.environ.get("SECML_DATA_BUCKET"):
        data = "s3://" + os.environ["SECML_DATA_BUCKET"]
    else:
        data = os.environ.get("SECML_DATA_DIR") or str(project_root() / "data" / "workshop")
        if not Path(data, "guardduty").is_dir():
            data = scratch_folder("secml-data-")
            run_secml("generate", "--preset", "workshop", "--out", data)
    if os.environ.get("SECML_TUPLES_BUCKET"):
        return "s3://" + os.environ["SECML_TUPLES_BUCKET"], data
    if os.environ.get("SECML_TUPLES_DIR"):
        return os.environ["SECML_TUPLES_DIR"], data
    if data.startswith("s3://"):
        raise ValueError("SECML_DATA_BUCKET needs SECML_TUPLES_BUCKET or SECML_TUPLES_DIR")
    tuples = scratch_folder("secml-tuples-")
    for source, key in [
        ("cloudtrail", "train/cloudtrail_tuples.csv"),
        ("guardduty", "infer/guardduty_tuples.csv"),
    ]:
        run_secml("tuples", source, str(Path(data, source)), "--out", str(Path(tuples, key)))
    return tuples, data


# %% tags=["load-inputs"]
if BACKEND == "sagemaker":
    TUPLES_LOCATION = "s3://" + CONFIG["tuples_bucket"]
    DATA_LOCATION = "s3://" + CONFIG["data_bucket"]
else:
    TUPLES_LOCATION, DATA_LOCATION = local_locations()
TRAIN_KEY = CONFIG.get("train_key", "train/cloudtrail_tuples.csv")
INFER_KEY = CONFIG.get("infer_key", "infer/guardduty_tuples.csv")
TRUTH_KEY = CONFIG.get("truth_key", "truth.csv")


def tuples_file(key: str) -> pd.DataFrame:
    data = read_object(TUPLES_LOCATION, key)
    if data is None:
        raise FileNotFoundError(
            f"{TUPLES_LOCATION}/{key} does not exist yet: run the ingest Lambda functions of "
            "exercise 2 (after removing their TODO comments) and come back to this cell"
        )
    return read_tuples(data)


train_tuples = tuples_file(TRAIN_KEY)
guardduty_tuples = tuples_file(INFER_KEY)
findings_documents = json_documents(DATA_LOCATION, "guardduty/")
truth_csv = read_object(DATA_LOCATION, TRUTH_KEY)
truth = pd.read_csv(io.BytesIO(truth_csv), dtype=str) if truth_csv else None

# A findings file holds one finding or a JSON array of them.
findings_list = []
for document in findings_documents:
    findings_list.extend(document if isinstance(document, list) else [document])
findings = findings_frame(findings_list)

print(f"training tuples (CloudTrail): {len(train_tuples):,}")
print(f"tuples to score (GuardDuty):  {len(guardduty_tuples):,}")
print(f"GuardDuty findings: {len(findings_list):,}, {len(findings):,} with a principal and IP")
train_tuples.head()

# %% [markdown]
# A quick look at what the model will learn from: how many principals and addresses there
# are, who is busiest, and how many addresses are IPv6.

# %%
train_versions = train_tuples["ip"].map(ip_version)
print(f"distinct principals: {train_tuples['principal'].nunique():,}")
print(f"distinct IP addresses: {train_tuples['ip'].nunique():,}")
print(f"IPv6 tuples in training: {(train_versions == 6).sum():,}")
train_tuples["principal"].value_counts().head(10).rename("events").to_frame()

# %% [markdown]
# ### Keep the activity under investigation out of training
#
# The CloudTrail logs cover the same days as the findings, so the API calls behind each
# finding, the attacker's included, are also training tuples. An attacker who used a stolen
# key from one address a dozen times has, as far as the model can tell, an address that only
# that principal uses: IP Insights would learn it as perfectly normal for the victim.
#
# In production this does not happen: the model is trained on past activity, before the
# attack. We get the same effect here by leaving the `(principal, ip)` pairs that we are
# about to score out of the training data. No labels are used: benign and malicious findings
# are treated alike (benign ones even lose tuples they would have had in production).

# %%
scored_pairs = pd.MultiIndex.from_frame(guardduty_tuples[["principal", "ip"]])
under_investigation = pd.MultiIndex.from_frame(train_tuples[["principal", "ip"]]).isin(scored_pairs)
if EXCLUDE_SCORED_TUPLES:
    training_set = train_tuples[~under_investigation].reset_index(drop=True)
else:
    training_set = train_tuples
print(f"CloudTrail tuples of the pairs under investigation: {under_investigation.sum():,}")
print(f"training tuples used: {len(training_set):,} of {len(train_tuples):,}")

# %% [markdown]
# ## 3. Train IP Insights
#
# IP Insights learns a vector for every principal and every IP address, such that principals
# and the addresses they really use get a high **dot product**, while random pairings get a
# low one. It needs no labels: normal CloudTrail activity is the only input.
#
# `num_entity_vectors` is twice the number of distinct principals, and at least 20,000.
#
# With `sagemaker` this cell starts a training job on an `ml.m5.large` instance (about five
# minutes). SageMaker's built-in algorithm accepts IPv4 only, so IPv6 tuples are left out
# and counted; the filtered copy goes to the tuples bucket under `ipinsights/`.

# %%
hyperparameters = {
    "num_entity_vectors": max(MIN_ENTITY_VECTORS, 2 * training_set["principal"].nunique()),
    **HYPERPARAMETERS,
}
print(hyperparameters)

if BACKEND == "local":
    sys.path.insert(0, str(project_root()))  # the secml package of this repository
    from secml.ipinsights import IPInsights

    model = IPInsights(**hyperparameters, seed=0)
    model.fit(training_set[["principal", "ip"]], progress=False)
else:
    import boto3

    session = boto3.session.Session(region_name=CONFIG.get("region"))
    REGION = session.region_name
    sm = session.client("sagemaker")
    runtime = session.client("sagemaker-runtime")
    s3 = session.client("s3")
    TUPLES_BUCKET = CONFIG["tuples_bucket"]
    TAGS = stack_tags(CONFIG["stack_name"])
    IMAGE_URI = ipinsights_image_uri(REGION)
    if CONFIG.get("role_arn"):
        ROLE_ARN = CONFIG["role_arn"]
    else:  # the notebook instance's own role
        instance = json.loads(NOTEBOOK_INSTANCE_METADATA.read_text())["ResourceName"]
        ROLE_ARN = sm.describe_notebook_instance(NotebookInstanceName=instance)["RoleArn"]

    train_ipv4 = ipv4_only(training_set)
    print(f"IPv6 tuples left out for the built-in: {len(training_set) - len(train_ipv4):,}")
    job_name = resource_name("ipinsights")
    train_key = f"ipinsights/{job_name}/train/cloudtrail_tuples_ipv4.csv"
    s3.put_object(
        Bucket=TUPLES_BUCKET,
        Key=train_key,
        Body=train_ipv4.to_csv(header=False, index=False).encode(),
    )
    model_data_uri = train_ipinsights(
        sm,
        job_name=job_name,
        image_uri=IMAGE_URI,
        role_arn=ROLE_ARN,
        train_s3_uri=f"s3://{TUPLES_BUCKET}/{train_key}",
        output_s3_uri=f"s3://{TUPLES_BUCKET}/ipinsights/output",
        hyperparameters=hyperparameters,
        instance_type=TRAINING_INSTANCE_TYPE,
        tags=TAGS,
    )
    print(f"model artifacts: {model_data_uri}")

# %% [markdown]
# ## 4. Score the training tuples and the GuardDuty tuples
#
# The score of a tuple is the dot product of the principal's vector and the address's vector:
# high means "this principal normally uses addresses like this one", low means "unusual".
#
# We score a random sample of the training tuples (to see what normal looks like) and every
# GuardDuty tuple.
#
# With `sagemaker` the model is hosted on a real-time endpoint only for the duration of this
# cell: the `with` block deletes the endpoint, its configuration and the model when it ends,
# also when something inside it fails. Tuples the built-in cannot score (IPv6) get no score.

# %%
train_sample = training_set.sample(
    n=min(TRAINING_SAMPLE_SIZE, len(training_set)), random_state=0
).reset_index(drop=True)


def score_locally(pairs: pd.DataFrame) -> np.ndarray:
    response = model.predict(list(pairs[["principal", "ip"]].itertuples(index=False, name=None)))
    return np.asarray([p["dot_product"] for p in response["predictions"]], dtype=float)


def score_on_endpoint(endpoint_name: str, pairs: pd.DataFrame) -> np.ndarray:
    scores = np.full(len(pairs), np.nan)
    scorable = (pairs["ip"].map(ip_version) == 4).to_numpy()
    if scorable.any():
        scores[scorable] = invoke_in_chunks(runtime, endpoint_name, pairs[scorable])
    print(f"scored {scorable.sum():,} tuples; {(~scorable).sum():,} IPv6 tuples left unscored")
    return scores


if BACKEND == "local":
    train_scores = score_locally(train_sample)
    guardduty_scores = score_locally(guardduty_tuples)
else:
    with deployed_endpoint(
        sm,
        model_data_uri=model_data_uri,
        image_uri=IMAGE_URI,
        role_arn=ROLE_ARN,
        instance_type=ENDPOINT_INSTANCE_TYPE,
        tags=TAGS,
    ) as endpoint_name:
        train_scores = score_on_endpoint(endpoint_name, train_sample)
        guardduty_scores = score_on_endpoint(endpoint_name, guardduty_tuples)

train_sample["dot_product"] = train_scores
guardduty_tuples["dot_product"] = guardduty_scores
guardduty_tuples.sort_values("dot_product").head(10)

# %% [markdown]
# ## 5. Compare the two distributions
#
# Most CloudTrail activity is normal, so the training scores show what "normal" looks like.
# GuardDuty findings are about suspicious activity: if IP Insights is useful here, a good part
# of the GuardDuty scores should sit to the left of the training distribution.

# %%
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(9, 4))
bins = np.histogram_bin_edges(
    np.concatenate(
        [train_scores[~np.isnan(train_scores)], guardduty_scores[~np.isnan(guardduty_scores)]]
    ),
    bins=50,
)
ax.hist(
    train_scores[~np.isnan(train_scores)],
    bins=bins,
    alpha=0.5,
    density=True,
    label="CloudTrail (training)",
)
ax.hist(
    guardduty_scores[~np.isnan(guardduty_scores)],
    bins=bins,
    alpha=0.5,
    density=True,
    label="GuardDuty",
)
ax.set_xlabel("dot product (low = unusual for this principal)")
ax.set_ylabel("density")
ax.legend()
plt.show()

# %% [markdown]
# ## 6. Choose a threshold
#
# We have no labels in real life, so the threshold comes from the training scores alone: a
# tuple is called **anomalous** when it scores lower than `THRESHOLD_PERCENTILE` percent of
# normal activity. With 1 % we accept that about one normal event in a hundred would be
# flagged; a lower percentile means fewer false alarms but more missed attacks. Try a few
# values and watch how many GuardDuty tuples cross the line.
#
# One caveat: the model has seen every training tuple, so their scores are a little higher
# than those of new, normal activity would be. Setting a slice of the CloudTrail tuples aside
# before training and taking the threshold from that slice is fairer (`make demo` does so).

# %%
threshold = float(np.nanpercentile(train_scores, THRESHOLD_PERCENTILE))
guardduty_tuples["anomalous"] = guardduty_tuples["dot_product"] < threshold
print(f"threshold (percentile {THRESHOLD_PERCENTILE} of training scores): {threshold:.4f}")
print(
    f"GuardDuty tuples below it: {guardduty_tuples['anomalous'].sum():,} "
    f"of {guardduty_tuples['dot_product'].notna().sum():,} scored"
)

# %% [markdown]
# ## 7. Rank the GuardDuty findings
#
# Each finding is joined to the score of its `(principal, ip)` tuple, and the findings are
# sorted from most to least unusual. This is the list an analyst would work through first.

# %%
pair_scores = guardduty_tuples.groupby(["principal", "ip"])["dot_product"].min()
ranked = findings.join(pair_scores, on=["principal", "ip"])
unscored = ranked["dot_product"].isna().sum()
ranked = (
    ranked.dropna(subset=["dot_product"])
    .sort_values("dot_product")
    .drop_duplicates("finding_id")
    .reset_index(drop=True)
)
ranked["anomalous"] = ranked["dot_product"] < threshold
ranked.index += 1
print(f"{len(ranked):,} findings ranked; {unscored:,} finding tuples had no score")
ranked[["finding_type", "time", "principal", "ip", "dot_product", "anomalous"]].head(20)

# %% [markdown]
# ## 8. How good is the ranking?
#
# The workshop dataset comes with the answers (`truth.csv`: which findings belong to an
# attack scenario). Real deployments do not have them; here they let us measure the ranking:
#
# * **precision** at the threshold: of the findings we flag, how many are malicious;
# * **recall** at the threshold: of the malicious findings, how many we flag;
# * **precision at k** with k = the number of malicious findings: how clean the top of the
#   list is;
# * **AUC**: the chance that a random malicious finding ranks above a random benign one.
#
# Reading the numbers: the threshold is calibrated on activity the model has seen, while every
# finding here is scored as new (we kept its tuples out of training). Benign findings therefore
# fall below the threshold more often than they would in production, and precision at the
# threshold is pessimistic. The order of the list, measured by precision at k and AUC, is what
# an analyst triaging findings relies on.

# %%
EVALUATION = {}
if truth is None:
    print("no truth.csv: nothing to measure against")
else:
    labelled = ranked.merge(truth[["finding_id", "label"]], on="finding_id", how="inner")
    labelled["malicious"] = labelled["label"].map(is_malicious)
    k = int(labelled["malicious"].sum())
    flagged = labelled["anomalous"]
    true_positives = int((flagged & labelled["malicious"]).sum())
    EVALUATION = {
        "findings": len(labelled),
        "malicious": k,
        "flagged": int(flagged.sum()),
        "precision": true_positives / max(int(flagged.sum()), 1),
        "recall": true_positives / max(k, 1),
        "precision_at_k": float(labelled.head(k)["malicious"].mean()) if k else float("nan"),
        "auc": roc_auc(labelled["dot_product"], labelled["malicious"]),
    }
    for name, value in EVALUATION.items():
        print(f"{name:>15}: {value:.3f}" if isinstance(value, float) else f"{name:>15}: {value}")

# %% [markdown]
# ## 9. From workshop to production
#
# The notebook is a one-off analysis. A production version would score every new finding as
# it arrives:
#
# 1. **Amazon EventBridge** matches new GuardDuty findings (`source: aws.guardduty`).
# 2. A **Lambda function** extracts the `(principal, ip)` tuples with the same code as the
#    GuardDuty ingest Lambda of exercise 2 and calls the **SageMaker endpoint**.
# 3. When the score is below the threshold chosen above, the Lambda publishes the finding and
#    its score to an **Amazon SNS** topic (e-mail, chat, ticketing) or raises its severity.
# 4. A scheduled job retrains IP Insights on recent CloudTrail tuples (weekly, say) so that
#    new, legitimate habits stop looking unusual; the threshold is recomputed with it.
#
# An always-on endpoint is the main cost: consider a serverless endpoint or batch transform
# when findings arrive in small numbers.

# %% [markdown]
# ## 10. Clean up
#
# With `sagemaker`, the endpoint was already deleted at the end of step 4. This cell deletes
# anything still recorded (for example after an interrupted step 4) and then asks SageMaker
# whether any endpoint this notebook created still exists, so you can see that nothing is
# billing. Training jobs are not billed once they finish and need no cleanup; the notebook
# instance itself stops on its own after an idle hour, and the facilitator's `cdk destroy`
# removes it.

# %%
if BACKEND == "sagemaker":
    cleanup(sm)
    alive = endpoints_still_there(sm)
    print(f"endpoints created by this notebook that still exist: {alive or 'none'}")
else:
    print("local backend: nothing to clean up")
