"""The plumbing behind the exercise 3 notebook, so that its cells show the steps and little else.

The notebook instance's on-create script copies this file next to the notebook. It needs pandas,
numpy, matplotlib and boto3; the `sagemaker` backend also needs the SageMaker Python SDK v3
(`sagemaker==3.27.0`, installed by the lifecycle scripts into the notebook's own kernel). The
`local` backend needs this repository's `secml` package instead. Tested by
tests/test_notebook_*.py, like the rest of the code.
"""

from __future__ import annotations  # the notebook instance's python may be older than ours

import atexit
import contextlib
import io
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

NOTEBOOK_INSTANCE_METADATA = Path("/opt/ml/metadata/resource-metadata.json")
CONFIG_NAME = "workshop_config.json"
SAGEMAKER_HOME = Path("/home/ec2-user/SageMaker")
BACKENDS = ("sagemaker", "local")


# ---------------------------------------------------------------------------------------------
# Where am I: the config the stack wrote, and the backend
# ---------------------------------------------------------------------------------------------


def load_config() -> tuple[dict, Path | None]:
    """The `workshop_config.json` the on-create script wrote next to the notebook, if any."""
    candidates = [
        Path(os.environ.get("SECML_WORKSHOP_CONFIG", CONFIG_NAME)),
        SAGEMAKER_HOME / CONFIG_NAME,
    ]
    path = next((p for p in candidates if p.is_file()), None)
    return (json.loads(path.read_text()) if path else {}), path


def choose_backend(config_path: Path | None, override: str | None = None) -> str:
    """`sagemaker` on a notebook instance (or next to a workshop config), `local` elsewhere.

    `override`, or else the SECML_BACKEND environment variable, wins.
    """
    backend = override or os.environ.get("SECML_BACKEND")
    if not backend:
        on_instance = NOTEBOOK_INSTANCE_METADATA.is_file() or config_path is not None
        backend = "sagemaker" if on_instance else "local"
    if backend not in BACKENDS:
        raise ValueError(f"SECML_BACKEND must be 'sagemaker' or 'local', not {backend!r}")
    return backend


# ---------------------------------------------------------------------------------------------
# Reading the tuples, the findings and the answers
# ---------------------------------------------------------------------------------------------


def read_tuples(data: bytes) -> pd.DataFrame:
    """Parse a `principal,ip` CSV.

    The Lambda functions write the files without a header row: `header=None` matters. Without
    it pandas silently turns the first tuple into column names and drops it from the data.
    """
    return pd.read_csv(
        io.BytesIO(data), header=None, names=["principal", "ip"], dtype=str, keep_default_na=False
    )


def ip_version(ip: str) -> int:
    return ipaddress.ip_address(ip).version


def s3_client(region: str | None = None):
    # Plain boto3 here: the same reader serves the offline mode, where inputs come from the
    # demo's embedded S3 or a folder; the SDK's S3 helpers would add nothing.
    import boto3

    return boto3.session.Session(region_name=region).client("s3")


def read_object(location: str, key: str, region: str | None = None) -> bytes | None:
    """Bytes of `key` under `location` (`s3://bucket` or a folder); None if it is absent."""
    if location.startswith("s3://"):
        s3 = s3_client(region)
        try:
            return s3.get_object(Bucket=location[5:], Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None
    path = Path(location) / key
    return path.read_bytes() if path.is_file() else None


def json_documents(location: str, prefix: str, region: str | None = None) -> list:
    """Every `*.json` object under `prefix`, parsed."""
    if location.startswith("s3://"):
        s3, bucket = s3_client(region), location[5:]
        keys = [
            item["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])
            if item["Key"].endswith(".json")
        ]
    else:
        keys = [str(p.relative_to(location)) for p in sorted(Path(location, prefix).glob("*.json"))]
    return [json.loads(read_object(location, key, region)) for key in keys]


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


def _canonical_ip(value) -> str | None:
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


FINDING_COLUMNS = ["finding_id", "finding_type", "time", "user_name", "principal", "ip"]


def findings_frame(findings: list) -> pd.DataFrame:
    """One row per (finding, principal, ip), with the columns an analyst reads first.

    `findings` is a list of findings or of files that hold a JSON array of them.
    """
    flat = []
    for item in findings:
        flat.extend(item if isinstance(item, list) else [item])
    rows = []
    for finding in flat:
        key = _get(_get(finding, "Resource"), "AccessKeyDetails")
        for principal, ip in finding_tuples(finding):
            rows.append(
                {
                    "finding_id": _get(finding, "Id"),
                    "finding_type": _get(finding, "Type"),
                    "time": _get(_get(finding, "Service"), "EventLastSeen")
                    or _get(finding, "UpdatedAt"),
                    "user_name": _get(key, "UserName") or "",
                    "principal": principal,
                    "ip": ip,
                }
            )
    return pd.DataFrame(rows, columns=FINDING_COLUMNS)


class WorkshopData:
    """The tuples, findings and answers the notebook works on, read from the stack's buckets
    (`sagemaker`) or from the offline sources (`local`)."""

    def __init__(self, backend: str, config: dict) -> None:
        self.region = config.get("region")
        if backend == "sagemaker":
            self.tuples_location = "s3://" + config["tuples_bucket"]
            self.data_location = "s3://" + config["data_bucket"]
        else:
            self.tuples_location, self.data_location = local_locations()
        self.train_key = config.get("train_key", "train/cloudtrail_tuples.csv")
        self.infer_key = config.get("infer_key", "infer/guardduty_tuples.csv")
        self.truth_key = config.get("truth_key", "truth.csv")
        self.cloudtrail = self._tuples(self.train_key)
        self.guardduty = self._tuples(self.infer_key)
        self.findings = findings_frame(
            json_documents(self.data_location, "guardduty/", self.region)
        )
        truth_csv = read_object(self.data_location, self.truth_key, self.region)
        self.truth = pd.read_csv(io.BytesIO(truth_csv), dtype=str) if truth_csv else None

    def _tuples(self, key: str) -> pd.DataFrame:
        data = read_object(self.tuples_location, key, self.region)
        if data is None:
            raise FileNotFoundError(
                f"{self.tuples_location}/{key} does not exist yet: run the ingest Lambda "
                "functions of exercise 2 (after removing their TODO comments) and come back"
            )
        return read_tuples(data)


# ---------------------------------------------------------------------------------------------
# Preparing the training data
# ---------------------------------------------------------------------------------------------


def split_training_data(
    cloudtrail: pd.DataFrame,
    guardduty: pd.DataFrame,
    *,
    holdout_fraction: float,
    exclude_scored_tuples: bool = True,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """(training tuples, held-out normal tuples, tuples left out as under investigation).

    The pairs about to be scored are left out first (neither trained on nor held out as
    "normal"); then a random slice of what remains is held out to calibrate the threshold on
    normal activity the model has never seen. Same order as `make demo` (secml.demo.pipeline).
    """
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction must be within (0, 1), got {holdout_fraction}")
    scored = pd.MultiIndex.from_frame(guardduty[["principal", "ip"]])
    under_investigation = pd.MultiIndex.from_frame(cloudtrail[["principal", "ip"]]).isin(scored)
    pool = cloudtrail[~under_investigation] if exclude_scored_tuples else cloudtrail
    holdout = pool.sample(frac=holdout_fraction, random_state=seed)
    training = pool.drop(holdout.index)
    excluded = int(under_investigation.sum()) if exclude_scored_tuples else 0
    return training.reset_index(drop=True), holdout.reset_index(drop=True), excluded


def entity_vectors(training: pd.DataFrame, minimum: int) -> int:
    """Twice the distinct principals, as SageMaker suggests, but at least `minimum`."""
    return max(minimum, 2 * training["principal"].nunique())


def ipv4_only(pairs: pd.DataFrame) -> pd.DataFrame:
    """The built-in algorithm accepts IPv4 addresses only."""
    return pairs[pairs["ip"].map(ip_version) == 4]


# ---------------------------------------------------------------------------------------------
# Backend `local`: the project's own IP Insights engine, no AWS account
# ---------------------------------------------------------------------------------------------


class LocalIPInsights:
    """The same steps as SageMakerIPInsights, with secml's PyTorch IP Insights, in-process."""

    name = "local"

    def __init__(self) -> None:
        self.model = None

    def train(self, training: pd.DataFrame, hyperparameters: dict) -> None:
        sys.path.insert(0, str(project_root()))  # the secml package of this repository
        from secml.ipinsights import IPInsights

        started = time.monotonic()
        self.model = IPInsights(**hyperparameters, seed=0)
        self.model.fit(training[["principal", "ip"]], progress=False)
        print(f"trained on {len(training):,} tuples in {time.monotonic() - started:.0f} s")

    @contextlib.contextmanager
    def deployed(self) -> Iterator[LocalIPInsights]:
        yield self  # nothing to host: the model is in this kernel

    def score(self, pairs: pd.DataFrame) -> np.ndarray:
        rows = list(pairs[["principal", "ip"]].itertuples(index=False, name=None))
        response = self.model.predict(rows)
        return np.asarray([p["dot_product"] for p in response["predictions"]], dtype=float)

    def cleanup(self) -> list:
        return []

    def endpoints_still_there(self) -> list[str]:
        return []


# ---------------------------------------------------------------------------------------------
# Backend `sagemaker`: the built-in IP Insights through the SageMaker Python SDK v3
# ---------------------------------------------------------------------------------------------

# One InvokeEndpoint request may carry at most 6 MB; stay well below it.
MAX_REQUEST_BYTES = 5_000_000
MAX_REQUEST_ROWS = 5_000
TRAINING_DONE = ("Completed", "Failed", "Stopped")
ENDPOINT_SETTLED = ("InService", "Failed", "OutOfService")


def resource_name(purpose: str) -> str:
    """`secml-<purpose>-<UTC time>-<random>`: unique, sortable, at most 63 characters."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    # 8 random hex digits: two names made in the same second collide once in ~4*10^9 pairs
    # (with 4 digits, once in 65,536: 50 names in one second collided about 2% of the time)
    return f"secml-{purpose}-{stamp}-{uuid.uuid4().hex[:8]}"[:63]


def wait_until(
    what: str,
    poll: Callable[[], tuple[str, str]],
    done: tuple[str, ...],
    *,
    poll_seconds: float = 30,
    timeout_seconds: float = 3600,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Call `poll()` (-> status, detail) until the status is in `done`; print every poll.

    An attendee waiting five minutes for a cell must see that it is working.
    """
    started = clock()
    while True:
        status, detail = poll()
        elapsed = clock() - started
        minutes, seconds = divmod(int(elapsed), 60)
        line = f"{what}: {minutes:2d} min {seconds:02d} s  {status}"
        print(f"{line}  ({detail})" if detail else line)
        if status in done:
            return status
        if elapsed > timeout_seconds:
            raise TimeoutError(f"{what} still {status} after {elapsed:.0f} s")
        sleep(poll_seconds)


def csv_request_bodies(
    pairs: pd.DataFrame, max_bytes: int = MAX_REQUEST_BYTES, max_rows: int = MAX_REQUEST_ROWS
) -> Iterator[tuple[int, bytes]]:
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


def _missing(exc: Exception) -> bool:
    message = str(exc)
    return "Could not find" in message or "does not exist" in message


def _denied(exc: Exception) -> bool:
    return "AccessDenied" in str(exc) or "not authorized" in str(exc)


# Everything any SageMakerIPInsights in this kernel created, not yet deleted: deleted when the
# kernel shuts down too (a failed cell stops "Run All" before the notebook's cleanup cell).
_LIVE: list[SageMakerIPInsights] = []


@atexit.register
def _cleanup_at_exit() -> None:
    for backend in list(_LIVE):
        backend.cleanup()


class SageMakerIPInsights:
    """Train the built-in IP Insights with ModelTrainer, host it on a real-time endpoint only
    while scoring, and delete what bills by the hour, whatever happens.

    Everything is named `secml-...` and tagged `secml:stack` with the stack's name, so the
    facilitator's teardown finds anything left behind.
    """

    name = "sagemaker"

    def __init__(
        self,
        config: dict,
        *,
        boto_session=None,
        poll_seconds: float = 30,
        instance_type: str | None = None,
    ) -> None:
        import boto3

        try:
            from sagemaker.core import image_uris
            from sagemaker.core.helper.session_helper import Session
        except ImportError:
            raise RuntimeError(
                "this kernel lacks the SageMaker Python SDK v3: choose the kernel "
                "'secml (SageMaker SDK v3)' (Kernel, Change Kernel) and run the cells again"
            ) from None

        self.boto_session = boto_session or boto3.session.Session(region_name=config.get("region"))
        self.session = Session(boto_session=self.boto_session)
        self.region = self.boto_session.region_name
        self.image_uri = image_uris.retrieve("ipinsights", self.region)
        self.bucket = config["tuples_bucket"]
        self.stack_name = config["stack_name"]
        self.role_arn = config.get("role_arn") or self._own_role()
        self.training_instance_type = instance_type or config.get(
            "training_instance_type", "ml.m5.large"
        )
        self.endpoint_instance_type = instance_type or config.get(
            "endpoint_instance_type", "ml.m5.large"
        )
        self.poll_seconds = poll_seconds
        self.model_data_uri: str | None = None
        self.job_name: str | None = None
        self.endpoint = None
        self.created: list = []  # sagemaker.core.resources objects, in creation order
        self.endpoints_ever: list[str] = []

    def _own_role(self) -> str:
        """The notebook instance's role (the SDK's get_execution_role reads the same)."""
        instance = json.loads(NOTEBOOK_INSTANCE_METADATA.read_text())["ResourceName"]
        from sagemaker.core.resources import NotebookInstance

        return NotebookInstance.get(instance, session=self.boto_session).role_arn

    def tags(self) -> list:
        from sagemaker.core.shapes import Tag

        return [
            Tag(key="secml:stack", value=self.stack_name),
            Tag(key="secml:created-by", value="ip_insights_workshop"),
        ]

    def train(self, training: pd.DataFrame, hyperparameters: dict) -> str:
        """Upload the IPv4 training tuples, run a training job, return the model's S3 URI."""
        from sagemaker.core.s3 import S3Uploader
        from sagemaker.core.training.configs import Compute, InputData, OutputDataConfig
        from sagemaker.train import ModelTrainer

        train_ipv4 = ipv4_only(training)
        print(f"IPv6 tuples left out for the built-in: {len(training) - len(train_ipv4):,}")
        prefix = f"s3://{self.bucket}/ipinsights/{resource_name('input')}"
        train_uri = S3Uploader.upload_string_as_file_body(
            train_ipv4.to_csv(header=False, index=False),
            f"{prefix}/cloudtrail_tuples_ipv4.csv",
            sagemaker_session=self.session,
        )
        trainer = ModelTrainer(
            training_image=self.image_uri,
            role=self.role_arn,
            sagemaker_session=self.session,
            base_job_name="secml-ipinsights",
            compute=Compute(instance_type=self.training_instance_type, volume_size_in_gb=5),
            hyperparameters=hyperparameters,
            output_data_config=OutputDataConfig(
                s3_output_path=f"s3://{self.bucket}/ipinsights/output"
            ),
            tags=self.tags(),
        )
        channel = InputData(channel_name="train", data_source=train_uri, content_type="text/csv")
        trainer.train(input_data_config=[channel], wait=False, logs=False)
        # The job train() started; AWS's own v3 examples read it the same way.
        job = trainer._latest_training_job
        self.job_name = job.training_job_name
        print(f"training job {self.job_name} started; this takes about 5 minutes")

        def poll() -> tuple[str, str]:
            job.refresh()
            return str(job.training_job_status), str(job.secondary_status or "")

        status = wait_until("training", poll, TRAINING_DONE, poll_seconds=self.poll_seconds)
        if status != "Completed":
            reason = job.failure_reason or "no reason given"
            raise RuntimeError(f"training job {self.job_name} ended {status}: {reason}")
        self.model_data_uri = job.model_artifacts.s3_model_artifacts
        print(f"model artifacts: {self.model_data_uri}")
        return self.model_data_uri

    def _remember(self, resource) -> None:
        self.created.append(resource)
        if self not in _LIVE:
            _LIVE.append(self)

    @contextlib.contextmanager
    def deployed(self) -> Iterator[SageMakerIPInsights]:
        """Model -> endpoint configuration -> endpoint, all deleted again when the block ends,
        also when a cell inside it fails or is interrupted."""
        from sagemaker.core.resources import Endpoint, EndpointConfig, Model
        from sagemaker.core.shapes import ContainerDefinition, ProductionVariant

        if self.model_data_uri is None:
            raise RuntimeError("train the model first")
        name = resource_name("ipinsights")
        try:
            model = Model.create(
                model_name=f"{name}-model",
                primary_container=ContainerDefinition(
                    image=self.image_uri, model_data_url=self.model_data_uri
                ),
                execution_role_arn=self.role_arn,
                tags=self.tags(),
                session=self.boto_session,
            )
            self._remember(model)
            config = EndpointConfig.create(
                endpoint_config_name=f"{name}-config",
                production_variants=[
                    ProductionVariant(
                        variant_name="AllTraffic",
                        model_name=model.model_name,
                        initial_instance_count=1,
                        instance_type=self.endpoint_instance_type,
                    )
                ],
                tags=self.tags(),
                session=self.boto_session,
            )
            self._remember(config)
            self.endpoint = Endpoint.create(
                endpoint_name=name,
                endpoint_config_name=config.endpoint_config_name,
                tags=self.tags(),
                session=self.boto_session,
            )
            self._remember(self.endpoint)
            self.endpoints_ever.append(name)
            print(f"endpoint {name} is being created; this takes about 5 to 8 minutes")
            status = wait_until(
                "endpoint", self._endpoint_status, ENDPOINT_SETTLED, poll_seconds=self.poll_seconds
            )
            if status != "InService":
                reason = self.endpoint.failure_reason or "no reason given"
                raise RuntimeError(f"endpoint {name} is {status}: {reason}")
            yield self
        finally:
            self.cleanup()

    def _endpoint_status(self) -> tuple[str, str]:
        self.endpoint.refresh()
        variants = self.endpoint.production_variants or []
        details = [
            str(s.status)
            for v in variants
            for s in (getattr(v, "variant_status", None) or [])
            if getattr(s, "status", None)
        ]
        return str(self.endpoint.endpoint_status), ", ".join(details)

    def score(self, pairs: pd.DataFrame) -> np.ndarray:
        """Dot products for every row, in order; IPv6 rows (the built-in refuses them) get NaN."""
        scores = np.full(len(pairs), np.nan)
        scorable = (pairs["ip"].map(ip_version) == 4).to_numpy()
        if scorable.any():
            scores[scorable] = self.invoke_in_chunks(pairs[scorable])
        print(f"scored {scorable.sum():,} tuples; {(~scorable).sum():,} IPv6 tuples left unscored")
        return scores

    def invoke_in_chunks(self, pairs: pd.DataFrame) -> np.ndarray:
        """Dot products for every row of `pairs`, in order, in requests under 6 MB."""
        scores = []
        for rows, body in csv_request_bodies(pairs):
            response = self.endpoint.invoke(
                body=body, content_type="text/csv", accept="application/json"
            )
            predictions = json.loads(response.body.read())["predictions"]
            if len(predictions) != rows:
                raise RuntimeError(f"sent {rows} tuples, got {len(predictions)} predictions")
            scores.extend(p["dot_product"] for p in predictions)
        return np.asarray(scores, dtype=float)

    def cleanup(self) -> list[tuple[str, str, str]]:
        """Delete the endpoint, its configuration and the model (newest first); report each.

        Safe to call again: what is already gone is reported as such.
        """
        report = []
        while self.created:
            resource = self.created.pop()
            kind = type(resource).__name__
            name = resource.get_name()
            try:
                outcome = self._delete(resource)
            except Exception as exc:  # report and keep deleting the rest
                outcome = f"FAILED: {exc}"
            report.append((kind, name, outcome))
            print(f"cleanup: {kind} {name}: {outcome}")
        if self in _LIVE:
            _LIVE.remove(self)
        return report

    def _delete(self, resource) -> str:
        """The notebook's role may delete only what carries the stack's tag, so for something
        already gone AWS answers AccessDenied (there is no tag to check), not "not found".
        Describe is allowed by name and says "not found": ask it first, and again on a refusal.
        """
        if self._gone(resource):
            return "already gone"
        try:
            resource.delete()
            return "deleted"
        except Exception as exc:
            if _missing(exc) or (_denied(exc) and self._gone(resource)):
                return "already gone"
            if "Creating" not in str(exc) and "Updating" not in str(exc):
                raise
        # An endpoint in the middle of a change cannot be deleted: wait until it settles.
        print(f"cleanup: waiting for {resource.get_name()} to settle before deleting it")
        self.endpoint = resource
        wait_until(
            "endpoint", self._endpoint_status, ENDPOINT_SETTLED, poll_seconds=self.poll_seconds
        )
        resource.delete()
        return "deleted"

    @staticmethod
    def _gone(resource) -> bool:
        """Whether Describe says the resource no longer exists (any other answer: not gone)."""
        try:
            resource.refresh()
        except Exception as exc:
            return _missing(exc)
        return False

    def endpoints_still_there(self) -> list[str]:
        """Which endpoints this backend created still exist (should be none after cleanup)."""
        from sagemaker.core.resources import Endpoint

        alive = []
        for name in self.endpoints_ever:
            try:
                endpoint = Endpoint.get(endpoint_name=name, session=self.boto_session)
            except Exception as exc:
                if _missing(exc):
                    continue
                raise
            alive.append(f"{name} ({endpoint.endpoint_status})")
        return alive


def ipinsights_backend(backend: str, config: dict, **options):
    """The object that trains, hosts and scores IP Insights for this backend."""
    return SageMakerIPInsights(config, **options) if backend == "sagemaker" else LocalIPInsights()


# ---------------------------------------------------------------------------------------------
# Optional: send the model to the detection Lambda (`-c detection=true`, docs/detection.md)
# ---------------------------------------------------------------------------------------------

# Where the detection construct reads its model in the tuples bucket: stacks/detection.py's
# MODEL_KEY (this file cannot import the stack; a test keeps the two equal).
DETECTION_MODEL_KEY = "model/ipinsights-detection.zip"


def detection_model_uri(config: dict) -> str | None:
    """The stack output DetectionModelUri, from the config or SECML_DETECTION_MODEL_URI (an
    `s3://bucket/key` or a file, for `secml detect --model FILE`); None: no detection here."""
    return config.get("detection_model_uri") or os.environ.get("SECML_DETECTION_MODEL_URI")


def send_model_to_detection(
    ipinsights, training: pd.DataFrame, threshold: float, config: dict, threshold_rule: str = ""
) -> str | None:
    """Export the trained local model with the notebook's threshold to where detection reads it.

    Only the `local` backend's model can be exported (docs/detection.md); for the built-in one
    this prints how to make one instead. Returns where the artifact went, or None; every
    outcome is one printed line, never a traceback, since this cell is optional.
    """
    if ipinsights.name != "local":
        bucket = config.get("tuples_bucket")
        target = f"s3://{bucket}/{DETECTION_MODEL_KEY}" if bucket else "the DetectionModelUri"
        print(
            "detection: the built-in SageMaker model cannot be exported for the detection "
            "Lambda; to send one, run `python -m secml train` then `python -m secml export-model "
            f"--out {target}` on the same CloudTrail tuples (docs/detection.md)"
        )
        return None
    target = detection_model_uri(config)
    if not target:
        print("detection: not deployed for this notebook (no DetectionModelUri): nothing sent")
        return None
    from secml.errors import SecmlError
    from secml.ipinsights.export import export_model, write_artifact

    try:
        artifact = export_model(
            ipinsights.model,
            training[["principal", "ip"]],
            threshold=threshold,
            threshold_rule=threshold_rule or None,
        )
        write_artifact(artifact, target)
    except SecmlError as exc:
        print(f"detection: model not sent: {exc}")
        return None
    size = len(artifact) / 1e6
    print(f"detection: model ({size:.2f} MB, threshold {threshold:.3f}) sent to {target}")
    return target


# ---------------------------------------------------------------------------------------------
# Results: threshold, ranked findings, evaluation, plot
# ---------------------------------------------------------------------------------------------

POSITIVE_LABELS = {"1", "true", "malicious", "anomalous", "attack", "positive"}


def is_malicious(label) -> bool:
    return str(label).strip().lower() in POSITIVE_LABELS


def threshold_from_holdout(holdout_scores: np.ndarray, percentile: float) -> float:
    """The score below which `percentile` percent of unseen normal activity falls."""
    scored = np.asarray(holdout_scores, dtype=float)
    scored = scored[~np.isnan(scored)]
    if scored.size == 0:
        raise ValueError("no held-out tuple has a score: nothing to take a threshold from")
    return float(np.percentile(scored, percentile))


RANKED_COLUMNS = ["finding_type", "user_name", "ip", "score", "label", "below_threshold"]


def rank_findings(
    findings: pd.DataFrame,
    guardduty: pd.DataFrame,
    threshold: float,
    truth: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per finding, most unusual first: the score of its lowest-scoring tuple.

    `guardduty` holds the scored tuples (a `score` column). The label comes from truth.csv
    when there is one, and is empty otherwise.
    """
    pair_scores = guardduty.groupby(["principal", "ip"])["score"].min()
    ranked = findings.join(pair_scores, on=["principal", "ip"])
    ranked = (
        ranked.dropna(subset=["score"])
        .sort_values("score", kind="stable")
        .drop_duplicates("finding_id")
        .reset_index(drop=True)
    )
    labels = truth.set_index("finding_id")["label"] if truth is not None else pd.Series(dtype=str)
    ranked["label"] = ranked["finding_id"].map(labels).fillna("")
    ranked["below_threshold"] = ranked["score"] < threshold
    ranked.index += 1
    return ranked


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


def evaluate(ranked: pd.DataFrame) -> dict:
    """Precision and recall at the threshold, precision at k, AUC over the labelled findings."""
    labelled = ranked[ranked["label"] != ""]
    if labelled.empty:
        return {}
    malicious = labelled["label"].map(is_malicious)
    flagged = labelled["below_threshold"]
    k = int(malicious.sum())
    hits = int((flagged & malicious).sum())
    return {
        "findings": len(labelled),
        "malicious": k,
        "flagged": int(flagged.sum()),
        "precision": hits / max(int(flagged.sum()), 1),
        "recall": hits / max(k, 1),
        "precision_at_k": float(malicious.head(k).mean()) if k else float("nan"),
        "auc": roc_auc(labelled["score"], malicious),
    }


LABEL_STYLE = {
    "malicious": {"color": "#c0392b", "marker": "X"},
    "benign": {"color": "#2e86c1", "marker": "o"},
    "": {"color": "#7f8c8d", "marker": "s"},
}


def plot_scores(holdout_scores: np.ndarray, ranked: pd.DataFrame, threshold: float, ax=None):
    """Held-out normal activity as a histogram, each finding as a marker by label, and the
    threshold as a line: what lies left of the line gets flagged."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(10, 4.5))
    normal = np.asarray(holdout_scores, dtype=float)
    normal = normal[~np.isnan(normal)]
    everything = np.concatenate([normal, ranked["score"].to_numpy(dtype=float)])
    bins = np.histogram_bin_edges(everything, bins=50)
    heights, _, _ = ax.hist(
        normal, bins=bins, color="#95a5a6", alpha=0.7, label="held-out normal CloudTrail"
    )
    top = max(heights.max() if len(heights) else 1.0, 1.0)
    ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.2f}")
    rng = np.random.default_rng(0)
    for label, style in LABEL_STYLE.items():
        rows = ranked[ranked["label"].map(lambda v, wanted=label: _label_key(v) == wanted)]
        if rows.empty:
            continue
        heights_at = top * (0.1 + 0.5 * rng.random(len(rows)))
        ax.scatter(
            rows["score"],
            heights_at,
            s=60,
            edgecolors="black",
            linewidths=0.5,
            label=f"finding: {label or 'no label'} ({len(rows)})",
            **style,
        )
    ax.set_xlabel("score: dot product (low = unusual for this principal)")
    ax.set_ylabel("held-out tuples per bin")
    ax.set_title("IP Insights scores: normal activity vs GuardDuty findings")
    ax.legend(loc="upper left", fontsize=9)
    return ax


def _label_key(label: str) -> str:
    if label == "":
        return ""
    return "malicious" if is_malicious(label) else "benign"
