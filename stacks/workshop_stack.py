"""WorkshopStack: one stack, one construct per concern."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from stacks.athena import Athena, AthenaSettings
from stacks.cleanup import Cleanup
from stacks.data import Data
from stacks.detection import Detection
from stacks.guardduty import GuardDuty, SampleFindings
from stacks.ingest import Ingest
from stacks.notebook import Notebook
from stacks.participant import Participant

# The notebook tags what it creates with this key (value: the stack name); cleanup finds it so.
STACK_TAG = "secml:stack"


class WorkshopStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        solutions: bool = False,
        sample_findings: SampleFindings = SampleFindings.IF_CREATED,
        notebook_instance_type: str = "ml.t3.medium",
        notebook_idle_minutes: int = 60,
        participant_role: bool = False,
        detection: bool = False,
        detection_email: str | None = None,
        athena: AthenaSettings | None = None,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        cdk.Tags.of(self).add(STACK_TAG, self.stack_name)

        self.data = Data(self, "Data")
        self.ingest = Ingest(
            self,
            "Ingest",
            data_bucket=self.data.data_bucket,
            tuples_bucket=self.data.tuples_bucket,
            solutions=solutions,
        )
        self.guardduty = GuardDuty(
            self, "GuardDuty", tag_key=STACK_TAG, sample_findings=sample_findings
        )
        self.notebook = Notebook(
            self,
            "Notebook",
            data_bucket=self.data.data_bucket,
            tuples_bucket=self.data.tuples_bucket,
            tag_key=STACK_TAG,
            instance_type=notebook_instance_type,
            idle_minutes=notebook_idle_minutes,
        )
        buckets = [self.data.data_bucket, self.data.tuples_bucket]
        self.athena = None
        if athena is not None:  # -c athena=true: organisation-scale tuples (docs/athena.md)
            self.athena = Athena(
                self,
                "Athena",
                data_bucket=self.data.data_bucket,
                tuples_bucket=self.data.tuples_bucket,
                source=athena.source,
                scan_limit_gb=athena.scan_limit_gb,
            )
            buckets.append(self.athena.results_bucket)

        self.cleanup = Cleanup(
            self,
            "Cleanup",
            buckets=buckets,
            notebook_role=self.notebook.role,
            tag_key=STACK_TAG,
        )
        # The notebook goes first on delete, so nothing new appears while the cleanup runs; the
        # dataset upload comes after the cleanup, so a failed create can empty and roll back.
        self.cleanup.must_outlive(self.notebook.instance, *self.data.writers)

        outputs = {
            "NotebookInstanceName": self.notebook.instance_name,
            "NotebookConsoleUrl": self.notebook.console_url,
            "DataBucketName": self.data.data_bucket.bucket_name,
            "TuplesBucketName": self.data.tuples_bucket.bucket_name,
            "CloudTrailIngestFunctionName": self.ingest.cloudtrail_fn.function_name,
            "GuardDutyIngestFunctionName": self.ingest.guardduty_fn.function_name,
            "GuardDutyDetectorId": self.guardduty.detector_id,
        }
        if detection:  # -c detection=true: score new GuardDuty findings (docs/detection.md)
            self.detection = Detection(
                self, "Detection", model_bucket=self.data.tuples_bucket, alert_email=detection_email
            )
            outputs["DetectionModelUri"] = self.detection.model_uri
            outputs["DetectionTopicArn"] = self.detection.topic.topic_arn
            outputs["DetectionFunctionName"] = self.detection.function.function_name
        for name, value in outputs.items():
            cdk.CfnOutput(self, name, value=value)

        if participant_role:  # fleet / Workshop Studio template: the attendee's own permissions
            fns = [self.ingest.cloudtrail_fn, self.ingest.guardduty_fn]
            Participant(
                self,
                "Participant",
                ingest_functions=fns,
                buckets=[self.data.data_bucket, self.data.tuples_bucket],
                notebook_instance_arn=self.notebook.instance.attr_notebook_instance_arn,
                log_groups=[fn.log_group for fn in fns],
            )
