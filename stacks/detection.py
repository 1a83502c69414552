"""Detection (`-c detection=true`): score every new GuardDuty finding, alert on anomalous pairs.

EventBridge rule (pattern: detection_event_pattern.json) -> scoring Lambda (lambda_src/
detection_scoring, the model read from the tuples bucket) -> Security Hub finding + SNS alert.
Nothing runs while no finding arrives: no endpoint, no schedule (docs/detection.md).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from lambda_src.staging import BUILD_DIR, LAMBDA_SRC, stage_function
from stacks.functions import ASSET_EXCLUDE, python_function

EVENT_PATTERN_FILE = Path(__file__).resolve().parent / "detection_event_pattern.json"
MODEL_KEY = "model/ipinsights-detection.zip"  # fixed: a new object here is a model refresh
SOURCE = "detection_scoring"
# EventBridge and Lambda both retry before a finding lands in the dead-letter queue.
RETRY_ATTEMPTS = 2
MAX_EVENT_AGE = cdk.Duration.hours(6)


def checkov_skip(construct: Construct, check_id: str, comment: str) -> None:
    """A checkov suppression with its reason, in the resource's template Metadata."""
    cfn = construct if isinstance(construct, cdk.CfnResource) else construct.node.default_child
    assert isinstance(cfn, cdk.CfnResource)
    meta = cfn.get_metadata("checkov") or {"skip": []}
    meta["skip"].append({"id": check_id, "comment": comment})
    cfn.add_metadata("checkov", meta)


def event_pattern() -> dict:
    return json.loads(EVENT_PATTERN_FILE.read_text())


def stage_scoring_function(out_dir: Path | None = None) -> Path:
    """lambda_src/detection_scoring as deployed: its modules, plus the GuardDuty ingest's
    (completed) code as `guardduty_ingest.py` with ingest_common.py, so the handler imports the
    very `tuples_from_finding` the ingest Lambda runs."""
    build = out_dir or BUILD_DIR
    ingest = stage_function("guardduty_ingest", solutions=True, out_dir=build / "detection-vendor")
    dest = build / SOURCE
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for path in sorted((LAMBDA_SRC / SOURCE).glob("*.py")):
        if path.name != "__init__.py":
            shutil.copyfile(path, dest / path.name)
    shutil.copyfile(ingest / "index.py", dest / "guardduty_ingest.py")
    for module in ingest.glob("*.py"):
        if module.name != "index.py":
            shutil.copyfile(module, dest / module.name)
    return dest


class Detection(Construct):
    """Rule, scoring function (DLQ, retries, error alarm) and the alert topic."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        model_bucket: s3.IBucket,
        model_key: str = MODEL_KEY,
        alert_email: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.model_uri = f"s3://{model_bucket.bucket_name}/{model_key}"

        # SNS's AWS managed key: no key to pay for; publishers in the account may use it.
        self.topic = sns.Topic(
            self,
            "Alerts",
            display_name="secml detection alerts",
            master_key=kms.Alias.from_alias_name(self, "SnsKey", "alias/aws/sns"),
            enforce_ssl=True,
        )
        if alert_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alert_email))

        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )

        self.function = python_function(
            self,
            "Scoring",
            code=lambda_.Code.from_asset(str(stage_scoring_function()), exclude=ASSET_EXCLUDE),
            description="Detection: scores GuardDuty findings with IP Insights, alerts anomalies",
            environment={
                "MODEL_BUCKET": model_bucket.bucket_name,
                "MODEL_KEY": model_key,
                "TOPIC_ARN": self.topic.topic_arn,
            },
            memory_size=512,
            timeout=cdk.Duration.seconds(60),
        )
        # Asynchronous invocations (EventBridge's) that still fail after the retries go to the
        # queue. python_function takes no DLQ argument; the property is the function's own.
        cfn_function = self.function.node.default_child
        assert isinstance(cfn_function, lambda_.CfnFunction)
        cfn_function.dead_letter_config = lambda_.CfnFunction.DeadLetterConfigProperty(
            target_arn=self.dead_letters.queue_arn
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sqs:SendMessage"], resources=[self.dead_letters.queue_arn]
            )
        )
        self.function.configure_async_invoke(
            retry_attempts=RETRY_ATTEMPTS, max_event_age=MAX_EVENT_AGE
        )

        self.function.add_to_role_policy(
            iam.PolicyStatement(
                # HeadObject (the ETag check) is authorised by s3:GetObject.
                actions=["s3:GetObject"],
                resources=[model_bucket.arn_for_objects(model_key)],
            )
        )
        # Not topic.grant_publish: with the imported alias it also grants kms:GenerateDataKey* on
        # every key of the account (feature flag applyImportedAliasPermissionsToPrincipal). The
        # AWS managed aws/sns key's own policy lets account principals use it through SNS, so
        # Publish needs no KMS permission:
        # https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=["sns:Publish"], resources=[self.topic.topic_arn])
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["securityhub:BatchImportFindings"],
                resources=[
                    stack.format_arn(
                        service="securityhub",
                        resource="product",
                        resource_name=f"{stack.account}/default",
                    )
                ],
            )
        )

        pattern = event_pattern()
        self.rule = events.Rule(
            self,
            "GuardDutyFindings",
            description="GuardDuty findings that name an access key and an API caller's address",
            event_pattern=events.EventPattern(
                source=pattern["source"],
                detail_type=pattern["detail-type"],
                detail=pattern["detail"],
            ),
        )
        self.rule.add_target(
            targets.LambdaFunction(
                self.function,
                dead_letter_queue=self.dead_letters,
                retry_attempts=RETRY_ATTEMPTS,
                max_event_age=MAX_EVENT_AGE,
            )
        )

        self._checkov_skips()

        self.errors_alarm = cloudwatch.Alarm(
            self,
            "ScoringErrors",
            alarm_description="The detection scoring function failed (no model at "
            f"{model_key}? see its log group); failed findings wait in the dead-letter queue.",
            metric=self.function.metric_errors(period=cdk.Duration.minutes(5), statistic="Sum"),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _checkov_skips(self) -> None:
        checkov_skip(
            self.dead_letters,
            "CKV_AWS_27",
            "Encrypted at rest with SQS-managed keys (SSE-SQS). checkov asks for a KMS key: "
            "EventBridge may write to a KMS-encrypted dead-letter queue only if the key policy "
            "lets it (docs.aws.amazon.com/eventbridge/latest/userguide/rule-dlq.html), which "
            "the AWS managed aws/sqs key's fixed policy does not, and a customer managed key "
            "costs a monthly fee while idle.",
        )
        checkov_skip(
            self.function.log_group,
            "CKV_AWS_158",
            "CloudWatch Logs encrypts log data at rest by default; a customer managed KMS key "
            "would be a standing monthly cost, and the group is deleted with the stack.",
        )
        for check_id, comment in (
            (
                "CKV_AWS_117",
                "The function calls only AWS APIs (S3, SNS, Security Hub); a VPC would need "
                "NAT or interface endpoints, a standing cost for no isolation gained.",
            ),
            (
                "CKV_AWS_115",
                "No reserved concurrency: new accounts have a concurrency quota of 10, which "
                "cannot be reserved from; findings are few and the function is short.",
            ),
            (
                "CKV_AWS_173",
                "The environment holds resource names only (bucket, key, topic ARN), no "
                "secrets; Lambda encrypts it at rest with its service key.",
            ),
        ):
            checkov_skip(self.function, check_id, comment)
