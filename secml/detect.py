"""`secml export-model` and `secml detect`: the detection construct's model, and its offline twin.

``export-model`` turns a model trained by ``secml train`` into the artifact the scoring Lambda
reads (secml/ipinsights/export.py), with the alert threshold inside, to a file or to
``s3://bucket/key`` (the stack's DetectionModelUri: a new object there is a model refresh).

``detect`` runs the deployed scoring handler (lambda_src/detection_scoring) in-process against
an embedded AWS (moto: S3 holds the model, SNS delivers the alerts to a queue we read back,
Security Hub receives the ASFF findings). Its events are EventBridge "GuardDuty Finding" events:
given with ``--event``, or the dataset's findings wrapped as GuardDuty would send them. Only
the events the stack's rule pattern matches reach the handler, as in AWS.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from secml.errors import SecmlError

REPO_ROOT = Path(__file__).resolve().parents[1]
EVENT_PATTERN_FILE = REPO_ROOT / "stacks" / "detection_event_pattern.json"
WORKSHOP_DATASET = REPO_ROOT / "data" / "workshop"
OFFLINE_BUCKET = "secml-detection-offline"
MODEL_KEY = "model/ipinsights-detection.zip"  # the stack's key (stacks/detection.py)
OFFLINE_FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:secml-detection-offline"


# --------------------------------------------------------------------------- events and pattern
def event_pattern() -> dict:
    return json.loads(EVENT_PATTERN_FILE.read_text())


def camel_case(obj):
    """GetFindings' PascalCase keys as EventBridge's camelCase (AccessKeyDetails ->
    accessKeyDetails), recursively; values are untouched."""
    if isinstance(obj, dict):
        return {(k[:1].lower() + k[1:]) if k else k: camel_case(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [camel_case(v) for v in obj]
    return obj


def eventbridge_event(finding: dict) -> dict:
    """A finding as GuardDuty publishes it to EventBridge ("GuardDuty Finding", camelCase)."""
    detail = camel_case(finding)
    finding_id = str(detail.get("id", ""))
    return {
        "version": "0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"guardduty/{finding_id}")),
        "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty",
        "account": str(detail.get("accountId", "")),
        "time": str(detail.get("updatedAt", "")),
        "region": str(detail.get("region", "")),
        "resources": [],
        "detail": detail,
    }


def events_in(document) -> list[dict]:
    """EventBridge events in a document: one event, a list of events, or findings (a list, a
    GetFindings response or one finding), which are wrapped."""
    if isinstance(document, list):
        return [e for item in document for e in events_in(item)]
    if not isinstance(document, dict):
        return []
    if isinstance(document.get("detail"), dict):
        return [document]
    findings = document.get("Findings", document.get("findings"))
    if isinstance(findings, list):
        return [eventbridge_event(f) for f in findings if isinstance(f, dict)]
    if "Id" in document or "id" in document:
        return [eventbridge_event(document)]
    return []


def pattern_matches(pattern: dict, event: dict) -> bool:
    """EventBridge's matching, as moto implements it (the tests check the cases we rely on)."""
    from moto.events.models import EventPattern

    return EventPattern.load(json.dumps(pattern)).matches_event(event)


def read_events(paths: list[Path]) -> list[dict]:
    events = []
    for path in paths:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SecmlError(f"--event {path}: no such file") from None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise SecmlError(f"--event {path}: not a JSON document ({exc})") from None
        found = events_in(document)
        if not found:
            raise SecmlError(f"--event {path}: no EventBridge event or GuardDuty finding in it")
        events.extend(found)
    return events


# ------------------------------------------------------------------------------ the model
def training_pairs(dataset: Path, ipv4_only: bool = True) -> tuple[list, list]:
    """(CloudTrail pairs, GuardDuty pairs) of a dataset folder, by the ingest Lambdas' code,
    with the stack's IPV4_ONLY=true."""
    from secml.demo.template import ensure_repo_on_path

    ensure_repo_on_path()
    import logging

    from lambda_src.cloudtrail_ingest import index as cloudtrail
    from lambda_src.guardduty_ingest import index as guardduty

    logging.getLogger("secml.ingest").setLevel(logging.ERROR)  # skipped files: counted, quiet
    out = []
    with tempfile.TemporaryDirectory(prefix="secml-detect-") as tmp:
        for module, source in ((cloudtrail, "cloudtrail"), (guardduty, "guardduty")):
            target = Path(tmp) / f"{source}.csv"
            event = {
                "sources": [str(dataset / source)],
                "output": str(target),
                "ipv4_only": ipv4_only,
                "print_limit": 0,
            }
            module.handler(event, None)
            text = target.read_text() if target.exists() else ""
            out.append([tuple(row) for row in csv.reader(text.splitlines()) if len(row) == 2])
    return out[0], out[1]


def train_artifact(
    dataset: Path,
    *,
    epochs: int | None = None,
    seed: int = 0,
    threshold_percentile: float = 1.0,
    progress: bool = False,
) -> bytes:
    """Train on the dataset's CloudTrail as `secml demo` does (the pairs under investigation
    left out, the workshop's hyperparameters) and export the model with its threshold."""
    import pandas as pd

    from secml import analysis
    from secml.ipinsights import IPInsights
    from secml.ipinsights.data import load_pairs
    from secml.ipinsights.export import export_model

    train, scored = training_pairs(dataset)
    if not train:
        raise SecmlError(f"{dataset}: no CloudTrail tuples to train on")
    train, _ = analysis.exclude_pairs(train, scored)
    principals = len({p for p, _ in train})
    hyperparameters = {
        **analysis.WORKSHOP_HYPERPARAMETERS,
        "num_entity_vectors": analysis.entity_vectors(principals),
    }
    if epochs is not None:
        hyperparameters["epochs"] = epochs
    model = IPInsights(**hyperparameters, seed=seed)
    pairs = load_pairs(pd.DataFrame(train, columns=["entity", "ip"]), what="train")
    model.fit(pairs, progress=progress)
    return export_model(model, pairs, threshold_percentile=threshold_percentile)


# --------------------------------------------------------------------------- the offline twin
@dataclass
class EventOutcome:
    finding_id: str
    finding_type: str
    matched: bool
    result: dict | None = None

    @property
    def alerted(self) -> bool:
        return bool(self.result and self.result.get("alerts"))


@dataclass
class OfflineRun:
    outcomes: list[EventOutcome] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)  # what SNS delivered: Subject, Message
    securityhub_findings: list[dict] = field(default_factory=list)
    threshold: float = float("nan")


@dataclass
class _Context:
    invoked_function_arn: str = OFFLINE_FUNCTION_ARN
    function_name: str = "secml-detection-offline"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))


def run_offline(artifact: bytes, events: list[dict], *, securityhub: bool = True) -> OfflineRun:
    """Every event through the rule pattern and, if it matches, the scoring handler, against
    moto's S3, SNS (subscribed by an SQS queue we read back) and Security Hub."""
    import boto3
    from moto import mock_aws

    from secml.demo.s3server import patched_environ
    from secml.demo.template import ensure_repo_on_path

    ensure_repo_on_path()
    from lambda_src.detection_scoring import index

    pattern = event_pattern()
    run = OfflineRun()
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": None,
        "AWS_PROFILE": None,
        "AWS_ENDPOINT_URL": None,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "MODEL_BUCKET": OFFLINE_BUCKET,
        "MODEL_KEY": MODEL_KEY,
    }
    with patched_environ(env), mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=OFFLINE_BUCKET)
        s3.put_object(Bucket=OFFLINE_BUCKET, Key=MODEL_KEY, Body=artifact)
        sns, sqs = boto3.client("sns"), boto3.client("sqs")
        topic = sns.create_topic(Name="secml-detection-alerts")["TopicArn"]
        queue = sqs.create_queue(QueueName="secml-detection-inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
        if securityhub:
            boto3.client("securityhub").enable_security_hub()
        index._MODEL.update(etag=None, model=None)  # a fresh container
        with patched_environ({"TOPIC_ARN": topic}):
            for event in events:
                detail = event.get("detail", {})
                outcome = EventOutcome(
                    str(detail.get("id", "")),
                    str(detail.get("type", "")),
                    pattern_matches(pattern, event),
                )
                if outcome.matched:
                    outcome.result = index.handler(event, _Context())
                    run.threshold = outcome.result.get("threshold", run.threshold)
                run.outcomes.append(outcome)
        while True:
            got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
            batch = got.get("Messages", [])
            if not batch:
                break
            for message in batch:
                run.messages.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        if securityhub:
            run.securityhub_findings = boto3.client("securityhub").get_findings()["Findings"]
    return run


def read_truth(dataset: Path | None) -> dict[str, dict[str, str]]:
    path = dataset / "truth.csv" if dataset else None
    if path is None or not path.is_file():
        return {}
    with path.open(newline="") as handle:
        return {row["finding_id"]: row for row in csv.DictReader(handle)}


# --------------------------------------------------------------------------------- the CLI
def register(subparsers) -> None:
    export = subparsers.add_parser(
        "export-model",
        help="a `secml train` model as the detection Lambda's artifact (threshold inside)",
        description="Export a trained model for the detection construct's scoring Lambda.",
    )
    export.add_argument("--model-dir", required=True, metavar="DIR", help="from `secml train`")
    export.add_argument(
        "--train", required=True, metavar="FILE", help="the entity,ip CSV it was trained on"
    )
    export.add_argument("--out", required=True, metavar="FILE|s3://BUCKET/KEY")
    group = export.add_mutually_exclusive_group()
    group.add_argument("--threshold", type=float, help="alert below this score")
    group.add_argument(
        "--threshold-percentile",
        type=float,
        default=1.0,
        metavar="P",
        help="alert below this percentile of the training scores (default 1)",
    )
    export.set_defaults(func=run_export)

    detect = subparsers.add_parser(
        "detect",
        help="the detection Lambda offline: which GuardDuty findings would alert",
        description="Run the scoring Lambda in-process (embedded S3, SNS, Security Hub) on "
        "EventBridge GuardDuty events; print which alerts would be sent.",
    )
    detect.add_argument(
        "--event",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="an EventBridge event, a list of them, or GuardDuty findings (repeatable); "
        "default: the dataset's findings",
    )
    detect.add_argument(
        "--model", type=Path, metavar="FILE", help="an export-model artifact (default: train)"
    )
    detect.add_argument(
        "--dataset",
        type=Path,
        default=WORKSHOP_DATASET,
        metavar="DIR",
        help="dataset folder to train on and take findings and truth.csv from "
        "(default data/workshop)",
    )
    detect.add_argument("--epochs", type=int, help="training epochs (default: the workshop's)")
    detect.add_argument("--seed", type=int, default=0)
    detect.add_argument("--save-model", type=Path, metavar="FILE", help="keep the trained artifact")
    detect.add_argument("--json", action="store_true", help="print the outcomes as JSON")
    detect.set_defaults(func=run_detect)


def run_export(args: argparse.Namespace) -> int:
    from secml.ipinsights.data import load_pairs
    from secml.ipinsights.export import export_model, write_artifact
    from secml.ipinsights.model import IPInsights

    model = IPInsights.load(args.model_dir)
    pairs = load_pairs(args.train, what="train")
    data = export_model(
        model, pairs, threshold=args.threshold, threshold_percentile=args.threshold_percentile
    )
    where = write_artifact(data, args.out)
    from lambda_src.detection_scoring.compact_model import CompactModel

    threshold = CompactModel.from_bytes(data).threshold
    print(f"model artifact {len(data):,} bytes, threshold {threshold:.4f} -> {where}")
    return 0


def run_detect(args: argparse.Namespace) -> int:
    from secml.demo.template import ensure_repo_on_path

    ensure_repo_on_path()
    from lambda_src.detection_scoring.compact_model import CompactModel, ModelError

    dataset = args.dataset
    if args.event:
        events = read_events(args.event)
    else:
        findings = dataset / "guardduty"
        if not findings.is_dir():
            raise SecmlError(f"--dataset {dataset}: no guardduty/ folder of findings")
        events = read_events(sorted(p for p in findings.glob("*.json")))
    if args.model is not None:
        try:
            artifact = args.model.read_bytes()
            CompactModel.from_bytes(artifact)
        except FileNotFoundError:
            raise SecmlError(f"--model {args.model}: no such file") from None
        except (OSError, ModelError) as exc:
            raise SecmlError(f"--model {args.model}: {exc}") from None
    else:
        if not (dataset / "cloudtrail").is_dir():
            raise SecmlError(f"--dataset {dataset}: no cloudtrail/ folder to train on")
        print(f"training on {dataset}/cloudtrail ...", file=sys.stderr)
        artifact = train_artifact(
            dataset, epochs=args.epochs, seed=args.seed, progress=sys.stderr.isatty()
        )
        if args.save_model:
            from secml.ipinsights.export import write_artifact

            write_artifact(artifact, args.save_model)
    run = run_offline(artifact, events)
    truth = read_truth(dataset)
    if args.json:
        print(json.dumps(outcomes_as_dicts(run, truth), indent=2, default=str))
    else:
        print_run(run, truth)
    return 0


def outcomes_as_dicts(run: OfflineRun, truth: dict) -> list[dict]:
    return [
        {
            "finding": o.finding_id,
            "type": o.finding_type,
            "label": truth.get(o.finding_id, {}).get("label", ""),
            "matched": o.matched,
            **(o.result or {}),
        }
        for o in run.outcomes
    ]


def print_run(run: OfflineRun, truth: dict) -> None:
    counts: Counter = Counter()
    print(f"threshold {run.threshold:.4f} (a pair scoring below it alerts)")
    for o in run.outcomes:
        label = truth.get(o.finding_id, {}).get("label", "")
        tag = f" [{label}]" if label else ""
        if not o.matched:
            counts["not matched by the rule"] += 1
            print(f"  -      {o.finding_type}{tag}: not matched by the rule (no access key)")
            continue
        result = o.result or {}
        if result.get("skipped"):
            counts[f"skipped: {result['skipped']}"] += 1
            print(f"  -      {o.finding_type}{tag}: skipped ({result['skipped']})")
            continue
        worst = result["pairs"][0]
        if o.alerted:
            counts["alerts"] += 1
            print(
                f"  ALERT  {o.finding_type}{tag}: {worst['principal']} from {worst['ip']} "
                f"score {worst['score']:.4f}: {result['alert']['why']}"
            )
        else:
            counts["no alert"] += 1
            print(
                f"  ok     {o.finding_type}{tag}: {worst['principal']} from {worst['ip']} "
                f"score {worst['score']:.4f}"
            )
    print(
        f"{len(run.outcomes)} events: "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        + f"; SNS delivered {len(run.messages)} messages; Security Hub holds "
        f"{len(run.securityhub_findings)} findings"
    )
