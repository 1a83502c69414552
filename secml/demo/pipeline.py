"""The workshop end to end, offline: synth, embedded S3, ingest Lambdas, IP Insights, analysis.

Each step is timed; the result carries everything the report and the terminal summary show.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from secml import analysis
from secml.demo.template import REPO_ROOT
from secml.errors import SecmlError

WORKSHOP_DATASET = REPO_ROOT / "data" / "workshop"


@dataclass
class DemoOptions:
    out: Path = Path("demo-output")
    preset: str = "workshop"
    dataset: Path | None = None  # a dataset folder instead of the preset (tests, own data)
    backend: str = "local"
    stack: str | None = None
    port: int = 0
    epochs: int | None = None  # None: the workshop's (analysis.WORKSHOP_HYPERPARAMETERS)
    train_on_scored_pairs: bool = False  # True: the original workshop's way (see exclude_pairs)
    vector_dim: int = 128
    holdout_fraction: float = 0.1
    threshold_percentile: float = 1.0
    seed: int = 0
    progress: bool = True


@dataclass
class StepTime:
    name: str
    seconds: float
    detail: str = ""


@dataclass
class DemoResult:
    options: DemoOptions
    dataset: Path | str | None  # a folder, or s3://bucket/ for the aws backend
    stack_name: str = ""
    resource_counts: Counter = field(default_factory=Counter)
    steps: list[StepTime] = field(default_factory=list)
    uploaded_files: int = 0
    uploaded_bytes: int = 0
    invocations: list = field(default_factory=list)  # secml.demo.lambdas.Invocation
    bucket_contents: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    n_train_tuples: int = 0
    n_holdout_tuples: int = 0
    n_excluded_tuples: int = 0
    n_guardduty_tuples: int = 0
    n_principals: int = 0
    training_scores: np.ndarray | None = None
    holdout_scores: np.ndarray | None = None
    guardduty_pair_scores: dict = field(default_factory=dict)
    threshold: float = float("nan")
    findings: list[analysis.ScoredFinding] = field(default_factory=list)
    explanations: dict[str, str] = field(default_factory=dict)
    ranking: analysis.RankingCheck | None = None
    auc_findings: float = float("nan")
    auc_vs_holdout: float = float("nan")
    detection_findings: analysis.Detection | None = None
    detection_vs_holdout: analysis.Detection | None = None
    report_path: Path | None = None
    hyperparameters: dict = field(default_factory=dict)  # what the model trained with

    @property
    def total_seconds(self) -> float:
        return sum(s.seconds for s in self.steps)


class StepTimer:
    def __init__(self, result: DemoResult, on_done=None) -> None:
        self.result = result
        self.on_done = on_done

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[StepTime]:
        entry = StepTime(name, 0.0)
        started = time.perf_counter()
        yield entry
        entry.seconds = time.perf_counter() - started
        self.result.steps.append(entry)
        if self.on_done:
            self.on_done(entry)


def resolve_dataset(options: DemoOptions) -> Path:
    if options.dataset is not None:
        dataset = options.dataset
    elif options.preset == "workshop":
        dataset = WORKSHOP_DATASET
    elif options.preset == "large":
        dataset = generated_preset("large")
    else:
        raise SecmlError(f"unknown preset {options.preset!r} (workshop or large)")
    check_dataset(dataset)
    return dataset


def check_dataset(dataset: Path) -> None:
    if not dataset.is_dir():
        raise SecmlError(
            f"dataset folder {dataset} not found; create it with "
            f"`python -m secml generate --preset workshop --out {dataset}`"
        )
    missing = [p for p in ("cloudtrail", "guardduty", "truth.csv") if not (dataset / p).exists()]
    if missing:
        raise SecmlError(f"dataset folder {dataset} lacks {', '.join(missing)}")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "secml" / "datasets"


def generated_preset(preset: str) -> Path:
    """Generate a preset (with the generator's default seed) once into the cache, atomically:
    an interrupted generation leaves no half dataset behind."""
    from secml.datagen.generate import DEFAULT_SEED

    target = cache_dir() / f"{preset}-seed{DEFAULT_SEED}"
    if target.is_dir():
        return target
    from secml.cli import main

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{preset}-", dir=target.parent))
    try:
        code = main(["generate", "--preset", preset, "--out", str(staging)])
        if code:
            raise SecmlError(f"generating the {preset} preset failed (exit {code})")
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def upload_dataset(s3, dataset: Path, bucket: str, prefix: str) -> tuple[int, int]:
    """What the stack's BucketDeployment does: the dataset folder's files to bucket/prefix.

    Uploaded from a few threads (boto3 clients are thread-safe; moto's server is threaded):
    hundreds of small objects otherwise spend most of their time waiting on round trips.
    """
    from concurrent.futures import ThreadPoolExecutor

    paths = sorted(p for p in dataset.rglob("*") if p.is_file())

    def put(path: Path) -> int:
        s3.put_object(
            Bucket=bucket, Key=prefix + path.relative_to(dataset).as_posix(), Body=path.read_bytes()
        )
        return path.stat().st_size

    with ThreadPoolExecutor(max_workers=8) as pool:
        sizes = list(pool.map(put, paths))
    return len(paths), sum(sizes)


def read_pairs(s3, bucket: str, key: str, writer: str) -> list[tuple[str, str]]:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    except s3.exceptions.NoSuchKey:
        raise SecmlError(f"{writer} wrote no tuples (no s3://{bucket}/{key})") from None
    return [(row[0], row[1]) for row in csv.reader(io.StringIO(body)) if len(row) >= 2]


def read_findings(bucket: str, prefix: str) -> list[dict]:
    """The findings under s3://bucket/prefix, read by the GuardDuty Lambda's own reader, so the
    report's findings are exactly those the function turned into tuples."""
    from secml.demo.lambdas import reset_cached_clients
    from secml.demo.template import ensure_repo_on_path

    ensure_repo_on_path()
    from lambda_src import ingest_common
    from lambda_src.guardduty_findings import read_finding_files

    reset_cached_clients()
    batches = read_finding_files([f"s3://{bucket}/{prefix}"], ingest_common.Summary())
    return [f for _, findings in batches for f in findings if isinstance(f, dict)]


def read_truth(s3, bucket: str, key: str) -> dict[str, dict[str, str]]:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return {}
    return analysis.parse_truth(body, f"s3://{bucket}/{key}")


def list_buckets(s3, buckets: list[str]) -> dict[str, list[tuple[str, int]]]:
    contents = {}
    for bucket in buckets:
        keys = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys += [(o["Key"], o["Size"]) for o in page.get("Contents", [])]
        contents[bucket] = keys
    return contents


def run_local(options: DemoOptions, on_step=None, on_info=None) -> DemoResult:
    """The offline workshop. `on_step(StepTime)` and `on_info(str, object)` report progress."""
    import boto3

    from secml.demo.lambdas import invoke
    from secml.demo.s3server import aws_env, check_port_free, embedded_s3
    from secml.demo.template import plan_from_template, synthesize

    info = on_info or (lambda kind, value: None)
    # Fail fast on what the user can fix, before the slow synth.
    dataset = resolve_dataset(options)
    check_port_free("127.0.0.1", options.port)
    result = DemoResult(options=options, dataset=dataset)
    timer = StepTimer(result, on_step)

    with timer.step("Synthesize the CDK app") as step:
        stack_name, template = synthesize({"solutions": "true"})
        plan = plan_from_template(stack_name, template)
        result.stack_name, result.resource_counts = stack_name, plan.resource_counts
        step.detail = f"{sum(plan.resource_counts.values())} resources in {stack_name}"
    info("resources", plan.resource_counts)

    with embedded_s3(options.port) as server, aws_env(server.endpoint_url):
        info("endpoint", server.endpoint_url)
        with timer.step("Start S3, upload dataset") as step:
            s3 = boto3.client("s3")
            for bucket in plan.buckets.values():
                s3.create_bucket(Bucket=bucket)
            result.uploaded_files, result.uploaded_bytes = upload_dataset(
                s3, dataset, plan.dataset_bucket, plan.dataset_prefix
            )
            step.detail = (
                f"{result.uploaded_files} files, {result.uploaded_bytes / 1e6:.1f} MB "
                f"-> s3://{plan.dataset_bucket}/{plan.dataset_prefix}"
            )

        with timer.step("Run the ingest Lambdas") as step:
            for name in ("CloudTrailIngest", "GuardDutyIngest"):
                fn = plan.functions[name]
                try:
                    invocation = invoke(fn)
                except Exception as exc:
                    raise SecmlError(f"{name} handler failed: {type(exc).__name__}: {exc}") from exc
                result.invocations.append(invocation)
                info("invocation", invocation)
            step.detail = ", ".join(
                f"{i.function} {i.summary.get('tuples_written', '?')} tuples"
                for i in result.invocations
            )

        with timer.step("Read tuples and findings") as step:
            data = read_back(
                result,
                s3,
                plan.functions["CloudTrailIngest"].environment,
                plan.functions["GuardDutyIngest"].environment,
                truth_location=(plan.dataset_bucket, plan.dataset_prefix + "truth.csv"),
                buckets=sorted(plan.buckets.values()),
            )
            step.detail = data.describe()
        with timer.step("Same tuples from the Athena SQL (DuckDB)") as step:
            from secml.sql.demo import duckdb_matches_lambda

            env = plan.functions["CloudTrailIngest"].environment
            step.detail = duckdb_matches_lambda(env, data.all_train)
    train_and_analyse(result, timer, data)
    return result


@dataclass
class ReadBack:
    """What the ingest step left in S3, as the notebook reads it."""

    all_train: list
    guardduty_pairs: list
    findings_raw: list
    truth: dict
    ipv4_only: bool

    def describe(self) -> str:
        return (
            f"{len(self.all_train)} training tuples, {len(self.guardduty_pairs)} GuardDuty "
            f"tuples, {len(self.findings_raw)} findings, {len(self.truth)} labels"
        )


def read_back(result: DemoResult, s3, ct_env, gd_env, truth_location, buckets) -> ReadBack:
    """What the notebook reads from S3 once the Lambdas ran: tuples, findings and labels."""
    all_train = read_pairs(s3, ct_env["OUTPUT_BUCKET"], ct_env["OUTPUT_KEY"], "CloudTrailIngest")
    if not all_train:
        raise SecmlError("CloudTrailIngest wrote no training tuples; nothing to train on")
    data = ReadBack(
        all_train=all_train,
        guardduty_pairs=read_pairs(
            s3, gd_env["OUTPUT_BUCKET"], gd_env["OUTPUT_KEY"], "GuardDutyIngest"
        ),
        findings_raw=read_findings(gd_env["INPUT_BUCKET"], gd_env.get("INPUT_PREFIX", "")),
        truth=read_truth(s3, *truth_location),
        ipv4_only=gd_env.get("IPV4_ONLY", "false").lower() == "true",
    )
    result.bucket_contents = list_buckets(s3, buckets)
    return data


def train_and_analyse(result: DemoResult, timer: StepTimer, data: ReadBack) -> None:
    options = result.options
    pairs = data.all_train
    if not options.train_on_scored_pairs:  # neither trained on nor held out as "normal"
        pairs, result.n_excluded_tuples = analysis.exclude_pairs(pairs, data.guardduty_pairs)
    train_pairs, holdout_pairs = analysis.split_holdout(
        pairs, options.holdout_fraction, options.seed
    )
    result.n_train_tuples = len(train_pairs)
    result.n_holdout_tuples = len(holdout_pairs)
    result.n_guardduty_tuples = len(data.guardduty_pairs)
    result.n_principals = len({p for p, _ in train_pairs})

    with timer.step("Train IP Insights") as step:
        model = train_model(train_pairs, options, result.n_principals)
        result.hyperparameters = dict(model.hyperparameters)
        step.detail = (
            f"{len(train_pairs)} tuples, {result.n_principals} principals, "
            f"{model.hyperparameters['epochs']} epochs, holdout {len(holdout_pairs)}, "
            f"{result.n_excluded_tuples} tuples of the scored pairs left out"
        )

    with timer.step("Score and analyse") as step:
        score_and_analyse(result, model, train_pairs, holdout_pairs, data.guardduty_pairs)
        join_to_findings(result, model, data.findings_raw, data.truth, data.ipv4_only, train_pairs)
        step.detail = f"{len(result.findings)} findings, threshold {result.threshold:.3f}"


def train_model(train_pairs, options: DemoOptions, n_principals: int):
    import pandas as pd

    from secml.ipinsights import IPInsights

    hyperparameters = {
        **analysis.WORKSHOP_HYPERPARAMETERS,
        "num_entity_vectors": analysis.entity_vectors(n_principals),
        "vector_dim": options.vector_dim,
    }
    if options.epochs is not None:
        hyperparameters["epochs"] = options.epochs
    model = IPInsights(**hyperparameters, seed=options.seed)
    model.fit(pd.DataFrame(train_pairs, columns=["entity", "ip"]), progress=options.progress)
    return model


def _scores(model, pairs) -> np.ndarray:
    if not pairs:
        return np.zeros(0)
    entities, ips = zip(*pairs, strict=True)
    return np.asarray(model.score(list(entities), list(ips)), dtype=float)


def score_and_analyse(result: DemoResult, model, train_pairs, holdout_pairs, guardduty_pairs):
    result.training_scores = _scores(model, train_pairs)
    result.holdout_scores = _scores(model, holdout_pairs)
    unique_gd = sorted(set(guardduty_pairs))
    result.guardduty_pair_scores = dict(zip(unique_gd, _scores(model, unique_gd), strict=True))
    result.threshold = analysis.threshold_from_scores(
        result.training_scores, result.options.threshold_percentile
    )


def join_to_findings(result: DemoResult, model, findings_raw, truth, ipv4_only, train_pairs):
    """Map tuple scores back to findings with the GuardDuty Lambda's own extraction code."""
    from secml.demo.template import ensure_repo_on_path

    ensure_repo_on_path()
    from lambda_src.guardduty_ingest.index import tuples_from_finding

    extracted = [
        (
            str(f.get("Id", "")),
            str(f.get("Type", "")),
            list(tuples_from_finding(f, ipv4_only=ipv4_only)),
        )
        for f in findings_raw
    ]
    missing = sorted(
        {p for _, _, pairs in extracted for p in pairs} - set(result.guardduty_pair_scores)
    )
    if missing:  # not in the Lambda's output (cannot happen with one extraction code; be safe)
        result.guardduty_pair_scores.update(zip(missing, _scores(model, missing), strict=True))
    result.findings = analysis.rank_findings(
        analysis.join_findings(extracted, result.guardduty_pair_scores, truth)
    )
    profile = analysis.TrainingProfile.from_pairs(train_pairs)
    result.explanations = {
        f.finding_id: analysis.explain_score(f, profile, ipv4_only) for f in result.findings
    }
    result.ranking = analysis.check_ranking(result.findings)
    malicious = [f.score for f in result.findings if f.label == "malicious" and f.score is not None]
    benign = [f.score for f in result.findings if f.label == "benign" and f.score is not None]
    result.auc_findings = analysis.roc_auc(malicious, benign)
    result.auc_vs_holdout = analysis.roc_auc(malicious, result.holdout_scores)
    result.detection_findings = analysis.detection_at(malicious, benign, result.threshold)
    result.detection_vs_holdout = analysis.detection_at(
        malicious, result.holdout_scores, result.threshold
    )


def label_counts(findings) -> Counter:
    return Counter(f.label for f in findings)
