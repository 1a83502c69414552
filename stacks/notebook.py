"""Notebook: the SageMaker notebook instance attendees train and score IP Insights in."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from lambda_src.staging import pinned
from stacks.data import GUARDDUTY_PREFIX, TRUTH_KEY
from stacks.ingest import CLOUDTRAIL_OUTPUT_KEY, GUARDDUTY_OUTPUT_KEY
from stacks.nag import acknowledge, arn_ref
from stacks.s3_access import read_keys, read_prefix, write_keys

NOTEBOOK_PATH = Path(__file__).resolve().parents[1] / "notebooks" / "ip_insights_workshop.ipynb"
# The notebook's plumbing, copied next to it by the on-create script.
HELPERS_PATH = NOTEBOOK_PATH.with_name("workshop_helpers.py")
LIFECYCLE_DIR = Path(__file__).resolve().parent / "lifecycle"
# SageMaker's limit on each lifecycle script, base64-encoded.
LIFECYCLE_SCRIPT_LIMIT = 16384
PLATFORM = "notebook-al2023-v1"

# The kinds of SageMaker resource the notebook creates (and the Cleanup construct removes).
SAGEMAKER_RESOURCE_TYPES = ("training-job", "model", "endpoint-config", "endpoint")
# Every name the notebook gives a job, model or endpoint starts with this; the role may create,
# change, invoke and delete nothing else.
RESOURCE_NAME_PREFIX = "secml-"
# Where the notebook puts SageMaker's training input and output in the tuples bucket.
SAGEMAKER_WORK_PREFIX = "ipinsights/"
# Instance types the role may train and host on: the notebook's default (ml.m5.large) and the
# types the facilitator guide suggests where an account has no ml.m5.large quota.
TRAINING_INSTANCE_TYPES = ("ml.m5.large", "ml.m5.xlarge", "ml.c5.xlarge", "ml.c5.2xlarge")
HOSTING_INSTANCE_TYPES = ("ml.m5.large", "ml.m5.xlarge", "ml.c5.xlarge", "ml.c5.2xlarge")
# The SageMaker Python SDK's table of the AWS accounts that publish the IP Insights image, one
# per region (the SDK's image_uris.retrieve("ipinsights", region) reads the same file).
# Located without importing the SDK (a slow import that synth does not need).
IPINSIGHTS_IMAGE_CONFIG = (
    Path(importlib.util.find_spec("sagemaker").submodule_search_locations[0])
    / "core"
    / "image_uri_config"
    / "ipinsights.json"
)


# The log groups of the endpoints the notebook creates (one per endpoint, named after it),
# with their streams; the finding id of a policy on them.
ENDPOINT_LOG_GROUPS_FINDING = (
    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:"
    f"<AWS::AccountId>:log-group:/aws/sagemaker/Endpoints/{RESOURCE_NAME_PREFIX}*]"
)
TRAINING_LOG_STREAMS_FINDING = (
    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:"
    f"<AWS::AccountId>:log-group:/aws/sagemaker/TrainingJobs:log-stream:{RESOURCE_NAME_PREFIX}*]"
)


def _log_group_arn(stack: cdk.Stack, name: str) -> str:
    return stack.format_arn(
        service="logs",
        resource="log-group",
        resource_name=name,
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )


def sagemaker_endpoint_log_groups(stack: cdk.Stack) -> str:
    """The log groups (and streams) of the notebook's endpoints: the only ones to delete."""
    return _log_group_arn(stack, f"/aws/sagemaker/Endpoints/{RESOURCE_NAME_PREFIX}*")


def ipinsights_registries() -> dict[str, str]:
    """Region -> account of the IP Insights image, from the pinned SageMaker SDK."""
    config = json.loads(IPINSIGHTS_IMAGE_CONFIG.read_text(encoding="utf-8"))
    (version,) = config["versions"].values()
    return dict(sorted(version["registries"].items()))


def render_lifecycle_script(name: str, values: dict[str, str]) -> str:
    """stacks/lifecycle/<name> with each @@KEY@@ replaced by values[KEY]; all keys must be used."""
    text = (LIFECYCLE_DIR / name).read_text(encoding="utf-8")
    for marker, snippet in (
        ("@@PICK_PYTHON@@", "pick_python.sh"),
        ("@@SDK_KERNEL@@", "sdk_kernel.sh"),
    ):
        shared = (LIFECYCLE_DIR / snippet).read_text(encoding="utf-8").rstrip("\n")
        text = text.replace(marker, shared)
    for key, value in values.items():
        marker = f"@@{key}@@"
        if marker not in text:
            raise ValueError(f"{name} has no {marker}")
        text = text.replace(marker, value)
    if "@@" in text:
        raise ValueError(f"{name} still has an unreplaced @@ marker")
    return text


def sdk_requirements() -> str:
    """The pins the notebook's kernel installs: the SageMaker SDK and boto3 the tests ran with."""
    return " ".join(pinned(("sagemaker", "boto3")))


def on_start_values(*, idle_minutes: int, region: str) -> dict[str, str]:
    autostop = (LIFECYCLE_DIR / "autostop.py").read_text(encoding="utf-8").rstrip("\n")
    return {"IDLE_MINUTES": str(idle_minutes), "REGION": region, "AUTOSTOP_PY": autostop}


class Notebook(Construct):
    """Execution role, lifecycle configuration and notebook instance."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        data_bucket: s3.IBucket,
        tuples_bucket: s3.IBucket,
        tag_key: str,
        instance_type: str = "ml.t3.medium",
        idle_minutes: int = 60,
        notebook_path: Path = NOTEBOOK_PATH,
        helpers_path: Path = HELPERS_PATH,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        if idle_minutes < 1:
            raise ValueError("idle_minutes must be at least 1")
        self.idle_minutes = idle_minutes

        self.role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Workshop notebook: IP Insights training, endpoints, workshop buckets",
        )
        self._grant_buckets(data_bucket, tuples_bucket)
        self._grant_sagemaker(stack, tag_key)
        self._acknowledge_role(data_bucket, tuples_bucket)

        notebook_asset = s3_assets.Asset(self, "WorkshopNotebook", path=str(notebook_path))
        helpers_asset = s3_assets.Asset(self, "WorkshopHelpers", path=str(helpers_path))
        # Narrower than asset.grant_read: the two objects, no listing.
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[
                    asset.bucket.arn_for_objects(asset.s3_object_key)
                    for asset in (notebook_asset, helpers_asset)
                ],
            )
        )

        on_create = render_lifecycle_script(
            "on_create.sh",
            {
                "NOTEBOOK_BUCKET": notebook_asset.s3_bucket_name,
                "NOTEBOOK_KEY": notebook_asset.s3_object_key,
                "NOTEBOOK_FILE": notebook_path.name,
                "HELPERS_BUCKET": helpers_asset.s3_bucket_name,
                "HELPERS_KEY": helpers_asset.s3_object_key,
                "HELPERS_FILE": helpers_path.name,
                "SDK_REQUIREMENTS": sdk_requirements(),
                "REGION": stack.region,
                "STACK_NAME": stack.stack_name,
                "DATA_BUCKET": data_bucket.bucket_name,
                "TUPLES_BUCKET": tuples_bucket.bucket_name,
                "TRAIN_KEY": CLOUDTRAIL_OUTPUT_KEY,
                "INFER_KEY": GUARDDUTY_OUTPUT_KEY,
                "TRUTH_KEY": TRUTH_KEY,
            },
        )
        on_start = render_lifecycle_script(
            "on_start.sh", on_start_values(idle_minutes=idle_minutes, region=stack.region)
        )
        self.lifecycle = sagemaker.CfnNotebookInstanceLifecycleConfig(
            self,
            "Lifecycle",
            on_create=[
                sagemaker.CfnNotebookInstanceLifecycleConfig.NotebookInstanceLifecycleHookProperty(
                    content=cdk.Fn.base64(on_create)
                )
            ],
            on_start=[
                sagemaker.CfnNotebookInstanceLifecycleConfig.NotebookInstanceLifecycleHookProperty(
                    content=cdk.Fn.base64(on_start)
                )
            ],
        )

        self.instance = sagemaker.CfnNotebookInstance(
            self,
            "Instance",
            instance_type=instance_type,
            role_arn=self.role.role_arn,
            lifecycle_config_name=self.lifecycle.attr_notebook_instance_lifecycle_config_name,
            platform_identifier=PLATFORM,
            root_access="Disabled",
            direct_internet_access="Enabled",
            volume_size_in_gb=5,
            # IMDSv2 only: a session token is needed to read the role's credentials from the
            # instance metadata service, which blocks SSRF-style reads through a plain GET.
            instance_metadata_service_configuration=sagemaker.CfnNotebookInstance.InstanceMetadataServiceConfigurationProperty(
                minimum_instance_metadata_service_version="2"
            ),
        )
        # The on-create script reads the notebook with the role: its policy must exist first.
        self.instance.node.add_dependency(self.role.node.find_child("DefaultPolicy"))
        self.instance_name = self.instance.attr_notebook_instance_name

        # The auto-stop job stops this instance, and the SageMaker SDK's get_execution_role()
        # describes it. A policy of its own: the instance cannot be named before it exists.
        iam.Policy(
            self,
            "SelfPolicy",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    actions=[
                        "sagemaker:DescribeNotebookInstance",
                        "sagemaker:StopNotebookInstance",
                    ],
                    resources=[self.instance.attr_notebook_instance_arn],
                )
            ],
        )
        self.console_url = (
            f"https://{stack.region}.console.aws.amazon.com/sagemaker/home?region={stack.region}"
            f"#/notebook-instances/{self.instance_name}"
        )
        cdk.Validations.of(self.instance).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-SM1",
                reason="The workshop notebook needs no private network resources; a VPC with "
                "NAT would add cost and teardown steps for nothing it protects here.",
            ),
            cdk.Acknowledgment(
                id="AwsSolutions-SM2",
                reason="The ML storage volume is encrypted at rest by SageMaker with an AWS "
                "managed key; a customer managed key would outlive cdk destroy (KMS keys wait "
                "7-30 days to be deleted).",
            ),
            cdk.Acknowledgment(
                id="AwsSolutions-SM3",
                reason="The on-create script installs the pinned SageMaker Python SDK from "
                "PyPI and the notebook calls the SageMaker, S3 and runtime APIs; without a "
                "VPC, direct internet access is how it reaches them.",
            ),
        )

    def _grant_buckets(self, data_bucket: s3.IBucket, tuples_bucket: s3.IBucket) -> None:
        """What the notebook and the jobs it starts (which run with this role) read and write.

        The notebook reads the tuples, the findings and the answer key; it writes the training
        input under ipinsights/, where SageMaker also writes the model, which the endpoint reads.
        """
        work = f"{SAGEMAKER_WORK_PREFIX}*"
        statements = [
            read_keys(data_bucket, TRUTH_KEY),
            *read_prefix(data_bucket, GUARDDUTY_PREFIX),
            read_keys(tuples_bucket, CLOUDTRAIL_OUTPUT_KEY, GUARDDUTY_OUTPUT_KEY, work),
            write_keys(tuples_bucket, work),
            # ListBucket on the whole (workshop) bucket, without an s3:prefix condition: S3
            # answers a GetObject of a missing key with 404 only to a caller that may list the
            # bucket (403 otherwise), and the notebook's "finish exercise 2 first" message
            # relies on the 404 (NoSuchKey). Key names are all this reveals.
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[tuples_bucket.bucket_arn]),
        ]
        for statement in statements:
            self.role.add_to_policy(statement)

    def _acknowledge_role(self, data_bucket: s3.IBucket, tuples_bucket: s3.IBucket) -> None:
        role = self.role
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::{arn_ref(data_bucket)}/{GUARDDUTY_PREFIX}*]",
            "Read only: the notebook maps scores back to the dataset's findings, whose file "
            "names are not known at synth time.",
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::{arn_ref(tuples_bucket)}/{SAGEMAKER_WORK_PREFIX}*]",
            "Training input, output and model artifacts go under key names SageMaker and the "
            "notebook generate per job; the role writes nowhere else in the bucket.",
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken has no resource ARN; cloudwatch:PutMetricData has none "
            "either and is limited to SageMaker's namespaces by a condition.",
        )
        acknowledge(
            role,
            TRAINING_LOG_STREAMS_FINDING,
            "SageMaker names a training job's log streams after the job (one per instance); "
            "the pattern is the streams of the notebook's secml- jobs.",
        )
        acknowledge(
            role,
            ENDPOINT_LOG_GROUPS_FINDING,
            "SageMaker names an endpoint's log group after the endpoint and its streams after "
            "the variant and instance; the pattern is the notebook's secml- endpoints.",
        )
        for resource_type in SAGEMAKER_RESOURCE_TYPES:
            acknowledge(
                role,
                "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:"
                f"<AWS::AccountId>:{resource_type}/{RESOURCE_NAME_PREFIX}*]",
                "The notebook names each job, model and endpoint at run time (one per "
                "attempt, secml-<purpose>-<time>-<random>); tag conditions narrow the writes.",
            )

    def _grant_sagemaker(self, stack: cdk.Stack, tag_key: str) -> None:
        """Create, change, invoke and delete only secml-* jobs, models and endpoints.

        Condition keys per action from the service authorization reference,
        https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html
        Creates must carry the stack tag (aws:RequestTag); changes, invocations and deletes
        need it on the resource (aws:ResourceTag); training and hosting are limited to a few
        instance types (sagemaker:InstanceTypes, a list: ForAllValues plus Null, as in
        https://docs.aws.amazon.com/sagemaker/latest/dg/security_iam_id-based-policy-examples.html
        "Enforce a Specific Instance Type for Training Jobs").

        Describe and ListTags are limited by name only: a resource that is gone has no tag to
        match, so a tag-conditioned Describe could answer AccessDenied where the SDK's waiters
        (sagemaker.core.resources, wait_for_delete) need ValidationException to see it gone.

        No iam:GetRole or iam:SimulatePrincipalPolicy: the SageMaker Python SDK v3 uses them
        only to validate a role it is given (sagemaker/core/helper/iam_role_resolver.py), and
        goes on without validation on AccessDenied. Allowing the simulation would make it
        refuse this role: it simulates ec2:*NetworkInterface* and other VPC actions on "*",
        which a workshop without a VPC must not have.
        """

        def arn(resource_type: str) -> str:
            return stack.format_arn(
                service="sagemaker",
                resource=resource_type,
                resource_name=f"{RESOURCE_NAME_PREFIX}*",
            )

        stack_tag_requested = {f"aws:RequestTag/{tag_key}": stack.stack_name}
        stack_tag_present = {f"aws:ResourceTag/{tag_key}": stack.stack_name}

        def instance_types(types: tuple[str, ...]) -> dict:
            return {
                "StringEquals": stack_tag_requested,
                "ForAllValues:StringEquals": {"sagemaker:InstanceTypes": list(types)},
                "Null": {"sagemaker:InstanceTypes": "false"},
            }

        statements = [
            iam.PolicyStatement(
                sid="TrainOnAllowedInstances",
                actions=["sagemaker:CreateTrainingJob"],
                resources=[arn("training-job")],
                conditions=instance_types(TRAINING_INSTANCE_TYPES),
            ),
            iam.PolicyStatement(
                sid="HostOnAllowedInstances",
                actions=["sagemaker:CreateEndpointConfig"],
                resources=[arn("endpoint-config")],
                conditions=instance_types(HOSTING_INSTANCE_TYPES),
            ),
            iam.PolicyStatement(
                sid="CreateModelTagged",
                actions=["sagemaker:CreateModel"],
                resources=[arn("model")],
                conditions={"StringEquals": stack_tag_requested},
            ),
            iam.PolicyStatement(
                sid="CreateEndpointTagged",
                # Authorized on the endpoint and on the configuration it is created from.
                actions=["sagemaker:CreateEndpoint"],
                resources=[arn("endpoint"), arn("endpoint-config")],
                conditions={"StringEquals": stack_tag_requested},
            ),
            iam.PolicyStatement(
                sid="TagOnCreate",
                # SageMaker authorizes the Tags of a Create* call as AddTags too (since 2022;
                # e.g. https://github.com/aws/aws-cdk/issues/32294 for CreateTrainingJob).
                actions=["sagemaker:AddTags"],
                resources=[arn(t) for t in SAGEMAKER_RESOURCE_TYPES],
                conditions={"StringEquals": stack_tag_requested},
            ),
            iam.PolicyStatement(
                sid="ChangeInvokeDeleteTagged",
                actions=[
                    "sagemaker:StopTrainingJob",
                    "sagemaker:UpdateEndpoint",
                    "sagemaker:InvokeEndpoint",
                    "sagemaker:DeleteEndpoint",
                    "sagemaker:DeleteEndpointConfig",
                    "sagemaker:DeleteModel",
                ],
                resources=[arn(t) for t in SAGEMAKER_RESOURCE_TYPES],
                conditions={"StringEquals": stack_tag_present},
            ),
            iam.PolicyStatement(
                sid="DescribeByName",
                actions=[
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:DescribeModel",
                    "sagemaker:DescribeEndpointConfig",
                    "sagemaker:DescribeEndpoint",
                    "sagemaker:ListTags",
                ],
                resources=[arn(t) for t in SAGEMAKER_RESOURCE_TYPES],
            ),
            iam.PolicyStatement(
                sid="TrainingLogs",
                # SageMaker writes the training container's log with this role; the notebook
                # (and the SDK's wait(logs=True)) tails it.
                actions=[
                    "logs:CreateLogGroup",
                    "logs:DescribeLogStreams",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:GetLogEvents",
                ],
                resources=[
                    _log_group_arn(stack, "/aws/sagemaker/TrainingJobs"),
                    _log_group_arn(
                        stack, f"/aws/sagemaker/TrainingJobs:log-stream:{RESOURCE_NAME_PREFIX}*"
                    ),
                ],
            ),
            iam.PolicyStatement(
                sid="EndpointLogs",
                actions=[
                    "logs:CreateLogGroup",
                    "logs:DescribeLogStreams",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:GetLogEvents",
                ],
                resources=[sagemaker_endpoint_log_groups(stack)],
            ),
            iam.PolicyStatement(
                sid="PullIpInsightsImage",
                # The role starts the training job and the model, so SageMaker pulls the
                # image with it: "Scope ecr permissions ... to the
                # AlgorithmSpecification.TrainingImage value that you specify in a
                # CreateTrainingJob request" and to CreateModel's PrimaryContainer.Image,
                # https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html
                # The image's account differs per region: a mapping names it exactly.
                actions=[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                ],
                resources=[
                    stack.format_arn(
                        service="ecr",
                        account=self._ipinsights_account(stack),
                        resource="repository",
                        resource_name="ipinsights",
                    )
                ],
            ),
            # Neither action takes a resource ARN.
            iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]),
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            ),
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            ),
        ]
        for statement in statements:
            self.role.add_to_policy(statement)

    def _ipinsights_account(self, stack: cdk.Stack) -> str:
        """The account of the IP Insights image in the stack's region (a deploy-time lookup).

        In a region where IP Insights is not offered the lookup fails the deploy, which is
        right: the workshop cannot run there.
        """
        registries = ipinsights_registries()
        mapping = cdk.CfnMapping(
            self,
            "IpInsightsImageAccount",
            mapping={region: {"account": account} for region, account in registries.items()},
        )
        return mapping.find_in_map(stack.region, "account")
