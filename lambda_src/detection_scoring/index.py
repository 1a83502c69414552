"""Detection: score each new GuardDuty finding with IP Insights; alert on anomalous pairs.

EventBridge invokes this function with one GuardDuty finding event (the rule's pattern keeps
those that can name a principal and an address). For each (principal, IP) pair of the finding,
taken with the GuardDuty ingest Lambda's own `tuples_from_finding`, the exported model gives a
score; if one scores below the model's threshold, the finding gets one alert: a Security Hub
finding (when Security Hub is enabled; imported first, because importing again only updates
it) and then one SNS message. Every alert says the finding, principal, address, score,
threshold and why.

The model is s3://MODEL_BUCKET/MODEL_KEY (secml export-model). A new object under that key is
picked up on the next invocation (the ETag changes): retraining needs no redeploy.
"""

from __future__ import annotations

import json
import logging
import os

import boto3
from botocore.exceptions import ClientError

if __package__:  # imported as lambda_src.detection_scoring.index (CLI, offline twin, tests)
    from lambda_src.detection_scoring.alerts import Alert
    from lambda_src.detection_scoring.compact_model import CompactModel
    from lambda_src.guardduty_findings import is_sample
    from lambda_src.guardduty_ingest.index import tuples_from_finding
else:  # deployed: the modules are staged next to this file (stacks/detection.py)
    from alerts import Alert
    from compact_model import CompactModel
    from guardduty_findings import is_sample
    from guardduty_ingest import tuples_from_finding

LOG = logging.getLogger("secml.detection")
LOG.setLevel(logging.INFO)

_MODEL: dict = {"etag": None, "model": None, "loads": 0}


class ModelMissing(RuntimeError):
    """No model under MODEL_KEY yet: fail, so the event is retried and kept in the DLQ."""


def current_model(s3, bucket: str, key: str) -> tuple[CompactModel, str]:
    """The model under the fixed key, re-read only when its ETag changed (one HeadObject)."""
    try:
        etag = s3.head_object(Bucket=bucket, Key=key)["ETag"]
    except ClientError as exc:
        # Without s3:ListBucket (not granted: the function needs one key), S3 answers a missing
        # key with 403, not 404 (docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html).
        if exc.response.get("Error", {}).get("Code") in ("403", "404", "NoSuchKey", "NotFound"):
            raise ModelMissing(
                f"no model at s3://{bucket}/{key} (or no read access to it): upload one with "
                "`secml export-model`"
            ) from None
        raise
    if etag != _MODEL["etag"]:
        obj = s3.get_object(Bucket=bucket, Key=key)
        _MODEL.update(
            model=CompactModel.from_bytes(obj["Body"].read()),
            etag=obj["ETag"],
            loads=_MODEL["loads"] + 1,
        )
        LOG.info("model loaded: s3://%s/%s etag %s", bucket, key, obj["ETag"])
    return _MODEL["model"], _MODEL["etag"]


def _get(obj, key: str):
    """obj[key] in the camelCase of events or the PascalCase of the API."""
    if not isinstance(obj, dict):
        return None
    value = obj.get(key)
    return obj.get(key[0].upper() + key[1:]) if value is None else value


def _where(context, event: dict) -> tuple[str, str, str]:
    """(partition, region, account) of this function (the Security Hub product is its own)."""
    arn = getattr(context, "invoked_function_arn", "") or ""
    parts = arn.split(":")
    if len(parts) >= 5 and parts[0] == "arn":
        return parts[1], parts[3], parts[4]
    region = os.environ.get("AWS_REGION") or event.get("region") or "us-east-1"
    return "aws", region, str(event.get("account", ""))


def score_finding(finding: dict, model: CompactModel, *, model_uri: str = "") -> dict:
    """The verdict for one finding: its scored pairs and, if one is below the threshold, the
    alert for the lowest (no AWS calls: the offline twin and tests use it directly)."""
    if is_sample(finding):
        return {"skipped": "sample-finding", "pairs": [], "alert": None}
    pairs = tuples_from_finding(finding, ipv4_only=model.ipv4_only)
    if not pairs:
        reason = "no-principal-or-address"
        if model.ipv4_only and tuples_from_finding(finding, ipv4_only=False):
            reason = "ipv6-address-model-trained-on-ipv4-only"
        return {"skipped": reason, "pairs": [], "alert": None}
    scored = sorted((model.score(p, ip) for p, ip in pairs), key=lambda s: s.score)
    below = [s for s in scored if s.score < model.threshold]
    alert = None
    if below:
        worst = below[0]
        key = _get(_get(finding, "resource"), "accessKeyDetails")
        alert = Alert(
            finding_id=str(_get(finding, "id") or ""),
            finding_type=str(_get(finding, "type") or ""),
            account=str(_get(finding, "accountId") or ""),
            region=str(_get(finding, "region") or ""),
            principal=worst.principal,
            ip=worst.ip,
            score=worst.score,
            threshold=model.threshold,
            why=model.explain(worst),
            access_key_id=str(_get(key, "accessKeyId") or ""),
            also_below=tuple((s.ip, s.score) for s in below[1:]),
            model=model_uri,
        )
    return {
        "skipped": None,
        "pairs": [
            {"principal": s.principal, "ip": s.ip, "score": s.score, "below": s in below}
            for s in scored
        ],
        "alert": alert,
    }


def import_to_security_hub(alert: Alert, product_arn: str, account: str) -> str:
    """imported | not-enabled | failed: Security Hub is optional, its absence is no error."""
    client = boto3.client("securityhub")
    try:
        response = client.batch_import_findings(Findings=[alert.asff(product_arn, account)])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "InvalidAccessException":
            return "not-enabled"
        raise
    if response.get("FailedCount"):
        LOG.error("Security Hub refused the finding: %s", response.get("FailedFindings"))
        return "failed"
    return "imported"


def handler(event, context):
    if not isinstance(event, dict) or not isinstance(event.get("detail"), dict):
        LOG.warning("not an EventBridge event with a detail: ignored")
        return {"skipped": "not-an-event", "alerts": 0}
    finding = event["detail"]
    bucket, key = os.environ["MODEL_BUCKET"], os.environ["MODEL_KEY"]
    model, etag = current_model(boto3.client("s3"), bucket, key)
    verdict = score_finding(finding, model, model_uri=f"s3://{bucket}/{key} (ETag {etag})")
    result = {
        "finding": _get(finding, "id"),
        "skipped": verdict["skipped"],
        "pairs": verdict["pairs"],
        "threshold": model.threshold,
        "alerts": 0,
        "securityhub": None,
    }
    alert = verdict["alert"]
    if alert is not None:
        partition, region, account = _where(context, event)
        product_arn = f"arn:{partition}:securityhub:{region}:{account}:product/{account}/default"
        result["securityhub"] = import_to_security_hub(alert, product_arn, account)
        boto3.client("sns").publish(
            TopicArn=os.environ["TOPIC_ARN"], Subject=alert.subject(), Message=alert.message()
        )
        result["alerts"] = 1
        result["alert"] = {"subject": alert.subject(), "why": alert.why}
    LOG.info("detection: %s", json.dumps(result, default=str))
    return result
