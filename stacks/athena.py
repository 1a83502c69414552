"""Athena (optional, `-c athena=true`): the CloudTrail tuples of a whole organisation trail.

A Glue database and CloudTrail table with partition projection (account, region, day) over the
data bucket's CloudTrail prefix or an organisation trail bucket, an Athena workgroup with its own
encrypted result bucket, enforced settings and a bytes-scanned limit, the tuple query as the
workgroup's named query, and a function that runs it (UNLOAD) into the tuples bucket's train/ key.
The query text is secml/sql/cloudtrail_tuples.sql in Athena's dialect: the one definition the
DuckDB engine also runs. See docs/athena.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.data import CLOUDTRAIL_PREFIX, DATASET_DIR
from stacks.functions import python_function, source_code
from stacks.ingest import CLOUDTRAIL_OUTPUT_KEY
from stacks.nag import acknowledge, arn_ref

TABLE_NAME = "cloudtrail"
RESULTS_PREFIX = "query-results/"
UNLOAD_PREFIX = "unload/"
DEFAULT_SCAN_LIMIT_GB = 100  # at $5 per TB scanned, one query costs at most about $0.50
# Regions enabled by default in every account (an opt-in region's logs need it listed).
DEFAULT_REGIONS = (
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "sa-east-1",
    "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-north-1", "ap-south-1",
    "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-southeast-1", "ap-southeast-2",
)  # fmt: skip
_LAYOUT = re.compile(r"AWSLogs/(\d{12})/CloudTrail/([a-z0-9-]+)/(\d{4})/(\d{2})/(\d{2})/")

# The CloudTrail table's columns (the fields of a CloudTrail record, lower case), as AWS's
# documentation creates it for the CloudTrail SerDe.
_USER_IDENTITY = (
    "struct<type:string,principalid:string,arn:string,accountid:string,invokedby:string,"
    "accesskeyid:string,username:string,sessioncontext:struct<attributes:struct<"
    "mfaauthenticated:string,creationdate:string>,sessionissuer:struct<type:string,"
    "principalid:string,arn:string,accountid:string,username:string>,sourceidentity:string>>"
)
COLUMNS = {
    "eventversion": "string",
    "useridentity": _USER_IDENTITY,
    "eventtime": "string",
    "eventsource": "string",
    "eventname": "string",
    "awsregion": "string",
    "sourceipaddress": "string",
    "useragent": "string",
    "errorcode": "string",
    "errormessage": "string",
    "requestparameters": "string",
    "responseelements": "string",
    "additionaleventdata": "string",
    "requestid": "string",
    "eventid": "string",
    "readonly": "string",
    "resources": "array<struct<arn:string,accountid:string,type:string>>",
    "eventtype": "string",
    "apiversion": "string",
    "recipientaccountid": "string",
    "serviceeventdetails": "string",
    "sharedeventid": "string",
    "vpcendpointid": "string",
    "eventcategory": "string",
    "tlsdetails": "struct<tlsversion:string,ciphersuite:string,clientprovidedhostheader:string>",
}


@dataclass(frozen=True)
class TrailSource:
    """Where the CloudTrail logs are. bucket_name None: the stack's data bucket (the workshop
    dataset). prefix: the folder holding the account folders, e.g. 'AWSLogs/o-abc123def4/' for
    an organisation trail. accounts and regions: the partitions projected (Athena reads only
    these); first_day: 'yyyy/MM/dd', or relative as projection takes it ('NOW-1YEARS')."""

    bucket_name: str | None = None
    prefix: str = f"{CLOUDTRAIL_PREFIX}AWSLogs/"
    accounts: tuple[str, ...] = ()
    regions: tuple[str, ...] = DEFAULT_REGIONS
    first_day: str = "NOW-1YEARS"


def dataset_source(dataset_dir: Path = DATASET_DIR) -> TrailSource:
    """The data bucket, with the accounts, regions and first day found in the dataset."""
    found = {m.groups() for p in dataset_dir.rglob("*") if (m := _LAYOUT.search(p.as_posix()))}
    if not found:
        raise ValueError(f"no CloudTrail logs under {dataset_dir}")
    return TrailSource(
        accounts=tuple(sorted({f[0] for f in found})),
        regions=tuple(sorted({f[1] for f in found})),
        first_day=min("/".join(f[2:]) for f in found),
    )


def checkov_skip(construct: Construct, reasons: dict[str, str]) -> None:
    """Checkov findings this construct cannot fix, on its own resource, each with its reason
    (checkov reads Metadata.checkov.skip of a CloudFormation resource)."""
    cfn = construct.node.default_child if not isinstance(construct, cdk.CfnResource) else construct
    assert isinstance(cfn, cdk.CfnResource)
    skips = [{"id": check, "comment": reason} for check, reason in reasons.items()]
    cfn.add_metadata("checkov", {"skip": skips})


def glue_name(stack_name: str, suffix: str) -> str:
    """A Glue/Athena-safe name unique to the stack (lower case, digits, underscores)."""
    return re.sub(r"[^a-z0-9_]", "_", f"{stack_name}_{suffix}".lower())


class Athena(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        data_bucket: s3.IBucket,
        tuples_bucket: s3.IBucket,
        source: TrailSource | None = None,
        scan_limit_gb: int = DEFAULT_SCAN_LIMIT_GB,
        ipv4_only: bool = True,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        source = source or dataset_source()
        if not source.accounts or not source.regions:
            raise ValueError("Athena needs the accounts and regions to project")
        if scan_limit_gb < 1:
            raise ValueError("scan_limit_gb: at least 1")
        trail = (
            s3.Bucket.from_bucket_name(self, "TrailBucket", source.bucket_name)
            if source.bucket_name
            else data_bucket
        )
        self.results_bucket = s3.Bucket(
            self,
            "ResultsBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            # Emptied on delete by the Cleanup construct (given this bucket by WorkshopStack).
            removal_policy=cdk.RemovalPolicy.DESTROY,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=cdk.Duration.days(7),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                )
            ],
        )
        acknowledge(
            self.results_bucket,
            "AwsSolutions-S1",
            "Query results of one workgroup, expired after 7 days; Athena's own query history "
            "and CloudTrail record who ran what, so access logs would add a second bucket that "
            "cdk destroy cannot empty reliably.",
        )

        checkov_skip(
            self.results_bucket,
            {
                "CKV_AWS_18": "Access logs: see the AwsSolutions-S1 acknowledgment.",
                "CKV_AWS_21": "Query results are transient (expired after 7 days, deleted on "
                "destroy); old versions would outlive both.",
            },
        )

        self.database_name = glue_name(stack.stack_name, "cloudtrail")
        database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=stack.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name,
                description="CloudTrail logs for the tuple query (secml Athena construct)",
            ),
        )
        location = f"s3://{trail.bucket_name}/{source.prefix}"
        self.table = glue.CfnTable(
            self,
            "Table",
            catalog_id=stack.account,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=TABLE_NAME,
                table_type="EXTERNAL_TABLE",
                parameters={
                    "classification": "cloudtrail",
                    "projection.enabled": "true",
                    "projection.account.type": "enum",
                    "projection.account.values": ",".join(source.accounts),
                    "projection.region.type": "enum",
                    "projection.region.values": ",".join(source.regions),
                    "projection.day.type": "date",
                    "projection.day.format": "yyyy/MM/dd",
                    "projection.day.range": f"{source.first_day},NOW",
                    "projection.day.interval": "1",
                    "projection.day.interval.unit": "DAYS",
                    "storage.location.template": (
                        location + "${account}/CloudTrail/${region}/${day}"
                    ),
                },
                partition_keys=[
                    glue.CfnTable.ColumnProperty(name=name, type="string")
                    for name in ("account", "region", "day")
                ],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=location,
                    input_format="com.amazon.emr.cloudtrail.CloudTrailInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library="com.amazon.emr.hive.serde.CloudTrailSerde"
                    ),
                    columns=[
                        glue.CfnTable.ColumnProperty(name=name, type=kind)
                        for name, kind in COLUMNS.items()
                    ],
                ),
            ),
        )
        self.table.node.add_dependency(database)

        self.workgroup_name = glue_name(stack.stack_name, "tuples").replace("_", "-")
        self.workgroup = athena.CfnWorkGroup(
            self,
            "WorkGroup",
            name=self.workgroup_name,
            description="CloudTrail tuples: the tuple query, with a per-query scan limit",
            recursive_delete_option=True,  # delete with its saved query and history
            state="ENABLED",
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                bytes_scanned_cutoff_per_query=scan_limit_gb * 1024**3,
                publish_cloud_watch_metrics_enabled=True,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version="Athena engine version 3"
                ),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{self.results_bucket.bucket_name}/{RESULTS_PREFIX}",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_S3"
                    ),
                    expected_bucket_owner=stack.account,
                ),
            ),
        )
        from secml.sql.query import tuple_query  # (sqlglot: imported only when asked for)

        self.query_text = tuple_query("athena")
        self.named_query = athena.CfnNamedQuery(
            self,
            "TupleQuery",
            name="cloudtrail-tuples",
            description="principal,ip tuples of CloudTrail API calls (secml/sql)",
            database=self.database_name,
            work_group=self.workgroup_name,
            query_string=self.query_text,
        )
        self.named_query.node.add_dependency(self.workgroup)
        self.named_query.node.add_dependency(database)

        self.function = python_function(
            self,
            "Runner",
            code=source_code("athena_tuples"),
            description="Runs the CloudTrail tuple query in Athena into the tuples bucket",
            environment={
                "NAMED_QUERY_ID": self.named_query.attr_named_query_id,
                "WORKGROUP": self.workgroup_name,
                "RESULTS_BUCKET": self.results_bucket.bucket_name,
                "UNLOAD_PREFIX": UNLOAD_PREFIX,
                "OUTPUT_BUCKET": tuples_bucket.bucket_name,
                "OUTPUT_KEY": CLOUDTRAIL_OUTPUT_KEY,
                "IPV4_ONLY": str(ipv4_only).lower(),
            },
            memory_size=1024,
            timeout=cdk.Duration.minutes(15),
        )
        self.function.node.default_child.add_property_override(
            "EphemeralStorage",
            {"Size": 10240},  # the joined CSV is spooled to /tmp
        )
        self.function.node.default_child.add_property_override(
            "ReservedConcurrentExecutions",
            1,  # one run at a time: they share one output key
        )
        self._grant(stack, trail, source.prefix, tuples_bucket)
        cdk.CfnOutput(self, "RunnerFunctionName", value=self.function.function_name)
        cdk.CfnOutput(self, "WorkGroupName", value=self.workgroup_name)
        checkov_skip(
            self.function,
            {
                "CKV_AWS_116": "Run by hand and synchronously (like the ingest functions): no "
                "asynchronous event can be lost, so a dead-letter queue would stay empty.",
                "CKV_AWS_117": "Calls only AWS APIs (Athena, S3); a VPC would add NAT or "
                "endpoints for nothing.",
                "CKV_AWS_173": "The environment holds resource names and ids, no secrets.",
            },
        )
        checkov_skip(
            self.function.log_group,
            {
                "CKV_AWS_158": "Progress lines and query ids only; a customer-managed key would "
                "outlive cdk destroy (pending deletion for at least 7 days).",
            },
        )

    def _grant(
        self, stack: cdk.Stack, trail: s3.IBucket, prefix: str, tuples_bucket: s3.IBucket
    ) -> None:
        """What the function needs, and what Athena needs as it (queries run with the caller's
        permissions): the workgroup, the Glue table, the logs, the results, the one output key."""
        workgroup_arn = stack.format_arn(
            service="athena", resource="workgroup", resource_name=self.workgroup_name
        )
        glue_arns = [
            stack.format_arn(service="glue", resource="catalog"),
            stack.format_arn(service="glue", resource="database", resource_name=self.database_name),
            stack.format_arn(
                service="glue", resource="table", resource_name=f"{self.database_name}/{TABLE_NAME}"
            ),
        ]
        results = self.results_bucket
        statements = [
            iam.PolicyStatement(
                actions=[
                    "athena:GetNamedQuery",
                    "athena:StartQueryExecution",
                    "athena:GetQueryExecution",
                    "athena:StopQueryExecution",
                ],
                resources=[workgroup_arn],
            ),
            iam.PolicyStatement(
                actions=["glue:GetDatabase", "glue:GetTable", "glue:GetPartitions"],
                resources=glue_arns,
            ),
            iam.PolicyStatement(
                actions=["s3:GetBucketLocation"],
                resources=[trail.bucket_arn, results.bucket_arn],
            ),
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[trail.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}},
            ),
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[trail.arn_for_objects(f"{prefix}*")]
            ),
            iam.PolicyStatement(
                actions=["s3:ListBucket", "s3:ListBucketMultipartUploads"],
                resources=[results.bucket_arn],
            ),
            iam.PolicyStatement(
                actions=[
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:DeleteObject",
                    "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts",
                ],
                resources=[
                    results.arn_for_objects(f"{RESULTS_PREFIX}*"),
                    results.arn_for_objects(f"{UNLOAD_PREFIX}*"),
                ],
            ),
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[tuples_bucket.arn_for_objects(CLOUDTRAIL_OUTPUT_KEY)],
            ),
        ]
        for statement in statements:
            self.function.add_to_role_policy(statement)
        self._acknowledge(trail, prefix)

    def _acknowledge(self, trail: s3.IBucket, prefix: str) -> None:
        role = self.function.role
        results = arn_ref(self.results_bucket)
        if isinstance(trail, s3.Bucket):
            trail_arn = arn_ref(trail)
        else:
            trail_arn = f"arn:<AWS::Partition>:s3:::{trail.bucket_name}"
        reasons = {
            f"{trail_arn}/{prefix}*": "Athena reads every CloudTrail log object under the "
            "trail's prefix (the projected partitions' files, names not known in advance).",
            f"{results}/{RESULTS_PREFIX}*": "Athena writes each query's result and manifest "
            "files under the workgroup's result folder, named by query id at run time.",
            f"{results}/{UNLOAD_PREFIX}*": "UNLOAD writes its part files to a new folder per "
            "run (named at run time); the function reads and then deletes them.",
        }
        for resource, reason in reasons.items():
            acknowledge(role, f"AwsSolutions-IAM5[Resource::{resource}]", reason)


@dataclass(frozen=True)
class AthenaSettings:
    """What `-c athena=true` and its companions ask for (see stacks/app.py)."""

    source: TrailSource | None = None  # None: the data bucket's dataset
    scan_limit_gb: int = DEFAULT_SCAN_LIMIT_GB


def trail_source_from_context(
    bucket: str | None,
    prefix: str | None,
    accounts: Sequence[str],
    regions: Sequence[str],
    first_day: str | None,
) -> TrailSource | None:
    """The app's `-c athena_*` context as a TrailSource; None (the dataset) without a bucket."""
    if not bucket:
        return None
    if not accounts:
        raise ValueError("athena_trail_bucket needs athena_accounts (the accounts to project)")
    return TrailSource(
        bucket_name=bucket,
        prefix=(prefix or "AWSLogs/").rstrip("/") + "/",
        accounts=tuple(accounts),
        regions=tuple(regions) or DEFAULT_REGIONS,
        first_day=first_day or "NOW-1YEARS",
    )
