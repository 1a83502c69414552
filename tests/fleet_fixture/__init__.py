"""A stand-in WorkshopStack with the asset kinds the real one has, for `fleet package` tests.

The real stack (stacks/) gets its constructs from another branch; this fixture pins what the
packaging must handle regardless: a Lambda directory asset, a BucketDeployment source (plus the
deployment handler's own code and the AWS CLI layer, which are CDK-provided assets), and the
Participant policy wired to real functions, buckets, log groups and a notebook name.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from stacks.fleet_synthesizer import AssetParameterSynthesizer
from stacks.participant import Participant

HERE = Path(__file__).parent


class FixtureStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, violate: bool = False, **kw):
        super().__init__(scope, construct_id, **kw)
        bucket = s3.Bucket(
            self,
            "Data",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            removal_policy=cdk.RemovalPolicy.DESTROY,
            auto_delete_objects=False,
        )
        log_group = logs.LogGroup(
            self,
            "FnLogs",
            removal_policy=cdk.RemovalPolicy.DESTROY,
            retention=logs.RetentionDays.ONE_WEEK,
        )
        fn = lambda_.Function(
            self,
            "Fn",
            runtime=lambda_.Runtime.PYTHON_3_13,
            handler="index.handler",
            code=lambda_.Code.from_asset(str(HERE / "handler"), exclude=["__pycache__", "*.pyc"]),
            log_group=log_group,
        )
        s3deploy.BucketDeployment(
            self,
            "Deploy",
            destination_bucket=bucket,
            sources=[s3deploy.Source.asset(str(HERE / "data"))],
        )
        Participant(
            self,
            "Participant",
            ingest_functions=[fn],
            buckets=[bucket],
            notebook_instance_arn=self.format_arn(
                service="sagemaker", resource="notebook-instance", resource_name="workshop-notebook"
            ),
            log_groups=[log_group],
        )
        if violate:
            s3.Bucket(self, "Unencrypted", removal_policy=cdk.RemovalPolicy.DESTROY)
        else:
            cdk.Validations.of(self).acknowledge(*FIXTURE_ACKS)


# Findings of the stand-in's own (non-participant) resources: not what these tests are about.
FIXTURE_ACKS = [
    cdk.Acknowledgment(id=i, reason="test fixture")
    for i in (
        "AwsSolutions-S1",
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        "AwsSolutions-IAM5[Action::s3:GetObject*]",
        "AwsSolutions-IAM5[Action::s3:GetBucket*]",
        "AwsSolutions-IAM5[Action::s3:List*]",
        "AwsSolutions-IAM5[Action::s3:DeleteObject*]",
        "AwsSolutions-IAM5[Action::s3:Abort*]",
        "AwsSolutions-L1",
        "AwsSolutions-IAM5[Resource::<Data666C94C7.Arn>/*]",
    )
]


def build_fixture_app(context=None, *, outdir=None, violate=False) -> cdk.App:
    app = cdk.App(context=context or None, outdir=outdir)
    name = app.node.try_get_context("stack_name") or "FleetFixture"
    FixtureStack(app, name, synthesizer=AssetParameterSynthesizer(), violate=violate)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app
