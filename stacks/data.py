"""Data: the bucket holding the workshop dataset, and the bucket the ingest functions write to."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from stacks.functions import lambda_role, log_group
from stacks.nag import acknowledge, acknowledge_s3_grant_actions, arn_ref

DATASET_DIR = Path(__file__).resolve().parents[1] / "data" / "workshop"

# Layout of the data bucket (the dataset folder is deployed to the bucket root).
CLOUDTRAIL_PREFIX = "cloudtrail/"
GUARDDUTY_PREFIX = "guardduty/"
TRUTH_KEY = "truth.csv"
# Layout of the tuples bucket.
TRAIN_PREFIX = "train/"
INFER_PREFIX = "infer/"

_NO_ACCESS_LOGS = (
    "Short-lived workshop bucket holding synthetic data. Server access logs would be delivered "
    "late and asynchronously into a second bucket, which then cannot be emptied and deleted "
    "reliably by cdk destroy; CloudTrail already records the API calls the workshop is about."
)


def _workshop_bucket(scope: Construct, construct_id: str) -> s3.Bucket:
    bucket = s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        versioned=False,
        # Emptied on delete by the Cleanup construct, not auto_delete_objects (see cleanup.py).
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )
    acknowledge(bucket, "AwsSolutions-S1", _NO_ACCESS_LOGS)
    return bucket


class Data(Construct):
    """Data bucket (dataset at its root) and tuples bucket (train/ and infer/)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        dataset_dir: Path = DATASET_DIR,
        deployment_memory_mib: int = 1024,
    ) -> None:
        super().__init__(scope, construct_id)
        self.data_bucket = _workshop_bucket(self, "DataBucket")
        self.tuples_bucket = _workshop_bucket(self, "TuplesBucket")

        deploy_logs = log_group(self, "DatasetDeploymentLogs")
        deploy_role = lambda_role(self, "DatasetDeploymentRole", deploy_logs)
        self.deployment = s3deploy.BucketDeployment(
            self,
            "Dataset",
            sources=[s3deploy.Source.asset(str(dataset_dir))],
            destination_bucket=self.data_bucket,
            memory_limit=deployment_memory_mib,
            ephemeral_storage_size=cdk.Size.gibibytes(2),
            log_group=deploy_logs,
            role=deploy_role,
        )
        self._acknowledge_deployment(deploy_role)
        # What writes into the buckets while the stack is created. Each must be created after
        # the cleanup resource (WorkshopStack sees to it), so that a failed create can roll
        # back: CloudFormation cannot delete a bucket that still holds objects.
        self.writers: list[Construct] = [self.deployment]

    def _acknowledge_deployment(self, role: Construct) -> None:
        """Findings on the BucketDeployment machinery, whose policy aws-cdk-lib writes."""
        stack = cdk.Stack.of(self)
        acknowledge_s3_grant_actions(
            role, "s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:DeleteObject*", "s3:Abort*"
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-"
            "<AWS::AccountId>-<AWS::Region>/*]",
            "BucketDeployment reads its source zip from the CDK bootstrap asset bucket; "
            "aws-cdk-lib grants read on the bucket's objects, the asset key is not known to it.",
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::{arn_ref(self.data_bucket)}/*]",
            "BucketDeployment syncs the whole dataset to the data bucket root (prune deletes "
            "what the dataset no longer has), so it writes and deletes any key of that bucket.",
        )
        for child in stack.node.children:
            if child.node.id.startswith("Custom::CDKBucketDeployment"):
                acknowledge(
                    child,
                    "AwsSolutions-L1",
                    "The BucketDeployment handler and its runtime come with aws-cdk-lib "
                    "(pinned in requirements.txt); the stack's own functions use the newest.",
                )
