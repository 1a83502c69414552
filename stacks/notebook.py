"""Notebook: the SageMaker notebook instance attendees train and score IP Insights in."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from stacks.data import TRUTH_KEY
from stacks.ingest import CLOUDTRAIL_OUTPUT_KEY, GUARDDUTY_OUTPUT_KEY
from stacks.nag import acknowledge, acknowledge_s3_grant_actions, arn_ref

NOTEBOOK_PATH = Path(__file__).resolve().parents[1] / "notebooks" / "ip_insights_workshop.ipynb"
# The notebook's plumbing, copied next to it by the on-create script.
HELPERS_PATH = NOTEBOOK_PATH.with_name("workshop_helpers.py")
REQUIREMENTS = Path(__file__).resolve().parents[1] / "requirements.txt"
LIFECYCLE_DIR = Path(__file__).resolve().parent / "lifecycle"
# SageMaker's limit on each lifecycle script, base64-encoded.
LIFECYCLE_SCRIPT_LIMIT = 16384
PLATFORM = "notebook-al2023-v1"

# The kinds of SageMaker resource the notebook creates (and the Cleanup construct removes).
SAGEMAKER_RESOURCE_TYPES = (
    "training-job",
    "hyper-parameter-tuning-job",
    "transform-job",
    "model",
    "endpoint-config",
    "endpoint",
)


# SageMaker's own log namespace (jobs, endpoints, notebook instances name their groups there),
# and cdk-nag's finding id for a policy on it
SAGEMAKER_LOG_GROUPS_FINDING = (
    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:"
    "<AWS::AccountId>:log-group:/aws/sagemaker/*]"
)


def sagemaker_log_groups(stack: cdk.Stack) -> str:
    """The ARN pattern of every SageMaker log group in the stack's account and region."""
    return stack.format_arn(
        service="logs",
        resource="log-group",
        resource_name="/aws/sagemaker/*",
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )


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
    pins = dict(
        line.strip().split("==", 1)
        for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines()
        if "==" in line and not line.startswith("#")
    )
    return " ".join(f"{name}=={pins[name].split()[0]}" for name in ("sagemaker", "boto3"))


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
        tuples_bucket.grant_read_write(self.role)
        data_bucket.grant_read(self.role)
        self._grant_sagemaker(stack)
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

    def _acknowledge_role(self, data_bucket: s3.IBucket, tuples_bucket: s3.IBucket) -> None:
        role = self.role
        acknowledge_s3_grant_actions(
            role, "s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:DeleteObject*", "s3:Abort*"
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::{arn_ref(data_bucket)}/*]",
            "Read only: the notebook reads the workshop dataset (truth.csv, findings) it explores.",
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::{arn_ref(tuples_bucket)}/*]",
            "The notebook reads the tuples and writes training input, output and model "
            "artifacts under key names SageMaker generates per job.",
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken has no resource ARN; cloudwatch:PutMetricData has none "
            "either and is limited to SageMaker's namespaces by a condition.",
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecr:<AWS::Region>:*:"
            "repository/ipinsights]",
            "The IP Insights image is published from an AWS-owned account that differs per "
            "region; the repository name pins it to that one algorithm.",
        )
        acknowledge(
            role,
            SAGEMAKER_LOG_GROUPS_FINDING,
            "SageMaker names the training and endpoint log groups and streams per job and "
            "endpoint; the pattern is SageMaker's own log namespace.",
        )
        for resource_type in SAGEMAKER_RESOURCE_TYPES:
            acknowledge(
                role,
                "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:"
                f"<AWS::AccountId>:{resource_type}/*]",
                "The notebook names its jobs, models and endpoints at run time (one per "
                "attempt); the ARN is limited to this account, region and resource type.",
            )

    def _grant_sagemaker(self, stack: cdk.Stack) -> None:
        def arn(resource_type: str) -> str:
            return stack.format_arn(service="sagemaker", resource=resource_type, resource_name="*")

        jobs = [arn("training-job"), arn("hyper-parameter-tuning-job"), arn("transform-job")]
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:CreateHyperParameterTuningJob",
                    "sagemaker:DescribeHyperParameterTuningJob",
                    "sagemaker:StopHyperParameterTuningJob",
                    "sagemaker:CreateTransformJob",
                    "sagemaker:DescribeTransformJob",
                    "sagemaker:StopTransformJob",
                    "sagemaker:CreateModel",
                    "sagemaker:DescribeModel",
                    "sagemaker:DeleteModel",
                    "sagemaker:CreateEndpointConfig",
                    "sagemaker:DescribeEndpointConfig",
                    "sagemaker:DeleteEndpointConfig",
                    "sagemaker:CreateEndpoint",
                    "sagemaker:DescribeEndpoint",
                    "sagemaker:UpdateEndpoint",
                    "sagemaker:DeleteEndpoint",
                    "sagemaker:InvokeEndpoint",
                    "sagemaker:AddTags",
                    "sagemaker:ListTags",
                ],
                resources=[
                    *jobs,
                    arn("model"),
                    arn("endpoint-config"),
                    arn("endpoint"),
                ],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                # Training and endpoint containers log here; the SDK tails the training log.
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                    "logs:GetLogEvents",
                ],
                resources=[sagemaker_log_groups(stack)],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                # The built-in algorithm's image lives in an AWS-owned account of each region.
                actions=[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                ],
                resources=[
                    stack.format_arn(
                        service="ecr",
                        account="*",
                        resource="repository",
                        resource_name="ipinsights",
                    )
                ],
            )
        )
        # Neither action takes a resource ARN.
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"])
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
