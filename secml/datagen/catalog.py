"""The CloudTrail events each kind of principal makes, pre-rendered into JSON fragments.

A record is assembled from fixed fragments (these) and a few per-event strings (time, IDs,
address, user agent), which is what keeps generation fast at 10M+ records.
"""

from __future__ import annotations

from dataclasses import dataclass, field

REGIONS = ("us-west-2", "us-east-1")
HOME_REGION = 0  # index into REGIONS


@dataclass
class Template:
    key: str
    source: str
    name: str
    read_only: bool
    params: list[str] = field(default_factory=lambda: ["null"])
    response: str = "null"
    global_service: bool = False  # logged in us-east-1 whatever the caller's region
    console: bool = False  # made from the AWS console (browser user agent, console session)
    signin: bool = False  # a ConsoleLogin sign-in event
    service: bool = False  # made by an AWS service on the principal's behalf (no tlsDetails)
    host: str = ""  # clientProvidedHostHeader pattern; {r} is the region
    # filled in by finalize()
    heads: list[str] = field(default_factory=list)  # per region: eventSource..awsRegion
    mid: str = ""  # responseElements (+ additionalEventData)
    tails: list[str] = field(default_factory=list)  # per region: readOnly..end of record


def _t(key, source, name, read_only, params=None, response="null", host=None, **kw) -> Template:
    service = source.split(".")[0]
    return Template(
        key,
        source,
        name,
        read_only,
        params or ["null"],
        response,
        host=host or f"{service}.{{r}}.amazonaws.com",
        **kw,
    )


_IAM = "iam.amazonaws.com"
TEMPLATES: list[Template] = [
    _t(
        "sts.GetCallerIdentity",
        "sts.amazonaws.com",
        "GetCallerIdentity",
        True,
        host="sts.{r}.amazonaws.com",
    ),
    _t(
        "ec2.DescribeInstances",
        "ec2.amazonaws.com",
        "DescribeInstances",
        True,
        [
            '{"instancesSet":{},"filterSet":{}}',
            '{"instancesSet":{},"filterSet":{"items":[{"name":"tag:Name","valueSet":{"items":[{"value":"web-*"}]}}]}}',
            '{"maxResults":1000,"instancesSet":{},"filterSet":{"items":[{"name":"instance-state-name","valueSet":{"items":[{"value":"running"}]}}]}}',
        ],
    ),
    _t(
        "ec2.DescribeSecurityGroups",
        "ec2.amazonaws.com",
        "DescribeSecurityGroups",
        True,
        ['{"securityGroupSet":{},"securityGroupIdSet":{},"filterSet":{}}'],
    ),
    _t(
        "ec2.DescribeVpcs",
        "ec2.amazonaws.com",
        "DescribeVpcs",
        True,
        ['{"vpcSet":{},"filterSet":{}}'],
    ),
    _t(
        "ec2.DescribeSubnets",
        "ec2.amazonaws.com",
        "DescribeSubnets",
        True,
        ['{"subnetSet":{},"filterSet":{}}'],
    ),
    _t(
        "ec2.DescribeTags",
        "ec2.amazonaws.com",
        "DescribeTags",
        True,
        [
            '{"filterSet":{"items":[{"name":"resource-type","valueSet":{"items":[{"value":"instance"}]}}]}}'
        ],
    ),
    _t("ec2.DescribeRegions", "ec2.amazonaws.com", "DescribeRegions", True, ['{"regionSet":{}}']),
    _t(
        "s3.ListBuckets",
        "s3.amazonaws.com",
        "ListBuckets",
        True,
        ['{"Host":"s3.amazonaws.com"}'],
        global_service=True,
        host="s3.amazonaws.com",
    ),
    _t(
        "s3.GetBucketLocation",
        "s3.amazonaws.com",
        "GetBucketLocation",
        True,
        [
            '{"bucketName":"acme-app-assets","Host":"acme-app-assets.s3.amazonaws.com","location":""}',
            '{"bucketName":"acme-build-artifacts","Host":"acme-build-artifacts.s3.amazonaws.com","location":""}',
        ],
        host="s3.{r}.amazonaws.com",
    ),
    _t(
        "s3.GetBucketPolicy",
        "s3.amazonaws.com",
        "GetBucketPolicy",
        True,
        [
            '{"bucketName":"acme-app-assets","Host":"acme-app-assets.s3.us-west-2.amazonaws.com","policy":""}'
        ],
        host="s3.{r}.amazonaws.com",
    ),
    _t(
        "s3.GetBucketAcl",
        "s3.amazonaws.com",
        "GetBucketAcl",
        True,
        [
            '{"bucketName":"acme-customer-exports","Host":"acme-customer-exports.s3.us-west-2.amazonaws.com","acl":""}',
            '{"bucketName":"acme-app-assets","Host":"acme-app-assets.s3.us-west-2.amazonaws.com","acl":""}',
        ],
        host="s3.{r}.amazonaws.com",
    ),
    _t(
        "s3.GetBucketVersioning",
        "s3.amazonaws.com",
        "GetBucketVersioning",
        True,
        [
            '{"bucketName":"acme-db-backups","Host":"acme-db-backups.s3.us-west-2.amazonaws.com","versioning":""}'
        ],
        host="s3.{r}.amazonaws.com",
    ),
    _t(
        "s3.PutBucketPolicy",
        "s3.amazonaws.com",
        "PutBucketPolicy",
        False,
        [
            '{"bucketName":"acme-build-artifacts","Host":"acme-build-artifacts.s3.us-west-2.amazonaws.com","policy":""}'
        ],
        host="s3.{r}.amazonaws.com",
    ),
    _t("lambda.ListFunctions", "lambda.amazonaws.com", "ListFunctions20150331", True),
    _t(
        "lambda.GetFunction",
        "lambda.amazonaws.com",
        "GetFunction20150331v2",
        True,
        ['{"functionName":"orders-api"}', '{"functionName":"thumbnailer"}'],
    ),
    _t(
        "lambda.UpdateFunctionCode",
        "lambda.amazonaws.com",
        "UpdateFunctionCode20150331v2",
        False,
        [
            '{"functionName":"orders-api","publish":false,"dryRun":false}',
            '{"functionName":"thumbnailer","publish":true,"dryRun":false}',
        ],
        '{"functionName":"orders-api","runtime":"python3.12","handler":"app.handler","state":"Active"}',
    ),
    _t(
        "logs.DescribeLogGroups",
        "logs.amazonaws.com",
        "DescribeLogGroups",
        True,
        ['{"logGroupNamePrefix":"/aws/lambda/"}'],
    ),
    _t(
        "logs.FilterLogEvents",
        "logs.amazonaws.com",
        "FilterLogEvents",
        True,
        ['{"logGroupName":"/aws/lambda/orders-api","startTime":1,"interleaved":true}'],
    ),
    _t(
        "logs.CreateLogStream",
        "logs.amazonaws.com",
        "CreateLogStream",
        False,
        ['{"logGroupName":"/app/web","logStreamName":"web-server"}'],
    ),
    _t(
        "cfn.DescribeStacks",
        "cloudformation.amazonaws.com",
        "DescribeStacks",
        True,
        ['{"stackName":"orders-service"}', '{"stackName":"data-platform"}'],
    ),
    _t(
        "cfn.DescribeStackEvents",
        "cloudformation.amazonaws.com",
        "DescribeStackEvents",
        True,
        ['{"stackName":"orders-service"}'],
    ),
    _t(
        "cfn.GetTemplate",
        "cloudformation.amazonaws.com",
        "GetTemplate",
        True,
        ['{"stackName":"orders-service","templateStage":"Original"}'],
    ),
    _t(
        "cfn.CreateChangeSet",
        "cloudformation.amazonaws.com",
        "CreateChangeSet",
        False,
        [
            '{"stackName":"orders-service","changeSetName":"cdk-deploy-change-set","changeSetType":"UPDATE"}'
        ],
        '{"id":"arn:aws:cloudformation:us-west-2:{acct}:changeSet/cdk-deploy-change-set/1"}',
    ),
    _t(
        "cfn.ExecuteChangeSet",
        "cloudformation.amazonaws.com",
        "ExecuteChangeSet",
        False,
        ['{"changeSetName":"cdk-deploy-change-set","stackName":"orders-service"}'],
    ),
    _t("iam.GetUser", _IAM, "GetUser", True, global_service=True, host=_IAM),
    _t("iam.ListAccessKeys", _IAM, "ListAccessKeys", True, global_service=True, host=_IAM),
    _t("iam.ListUsers", _IAM, "ListUsers", True, global_service=True, host=_IAM),
    _t("iam.ListRoles", _IAM, "ListRoles", True, global_service=True, host=_IAM),
    _t(
        "iam.ListPolicies",
        _IAM,
        "ListPolicies",
        True,
        ['{"scope":"Local","onlyAttached":false}'],
        global_service=True,
        host=_IAM,
    ),
    _t(
        "iam.ListAttachedUserPolicies",
        _IAM,
        "ListAttachedUserPolicies",
        True,
        global_service=True,
        host=_IAM,
    ),
    _t("iam.GetAccountSummary", _IAM, "GetAccountSummary", True, global_service=True, host=_IAM),
    _t(
        "iam.GetAccountAuthorizationDetails",
        _IAM,
        "GetAccountAuthorizationDetails",
        True,
        global_service=True,
        host=_IAM,
    ),
    _t(
        "iam.AttachRolePolicy",
        _IAM,
        "AttachRolePolicy",
        False,
        [
            '{"roleName":"batch-worker-role","policyArn":"arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"}'
        ],
        global_service=True,
        host=_IAM,
    ),
    _t(
        "iam.CreateAccessKey",
        _IAM,
        "CreateAccessKey",
        False,
        ['{"userName":"ci-deploy"}'],
        global_service=True,
        host=_IAM,
    ),
    _t(
        "iam.UpdateAccountPasswordPolicy",
        _IAM,
        "UpdateAccountPasswordPolicy",
        False,
        [
            '{"minimumPasswordLength":14,"requireSymbols":true,"requireNumbers":true,'
            '"requireUppercaseCharacters":true,"requireLowercaseCharacters":true,'
            '"allowUsersToChangePassword":true,"maxPasswordAge":90,"passwordReusePrevention":24}'
        ],
        global_service=True,
        host=_IAM,
    ),
    _t(
        "dynamodb.DescribeTable",
        "dynamodb.amazonaws.com",
        "DescribeTable",
        True,
        ['{"tableName":"orders"}', '{"tableName":"sessions"}'],
    ),
    _t("dynamodb.ListTables", "dynamodb.amazonaws.com", "ListTables", True),
    _t(
        "ssm.GetParameter",
        "ssm.amazonaws.com",
        "GetParameter",
        True,
        [
            '{"name":"/orders/db-endpoint","withDecryption":false}',
            '{"name":"/cdk-bootstrap/hnb659fds/version"}',
        ],
    ),
    _t(
        "ssm.UpdateInstanceInformation",
        "ssm.amazonaws.com",
        "UpdateInstanceInformation",
        False,
        [
            '{"agentVersion":"3.3.131.0","agentStatus":"Active","platformType":"Linux",'
            '"platformName":"Amazon Linux","platformVersion":"2023"}'
        ],
    ),
    _t("ssm.ListInstanceAssociations", "ssm.amazonaws.com", "ListInstanceAssociations", True),
    _t(
        "secretsmanager.GetSecretValue",
        "secretsmanager.amazonaws.com",
        "GetSecretValue",
        True,
        ['{"secretId":"prod/orders/db"}', '{"secretId":"prod/stripe/api-key"}'],
    ),
    _t(
        "kms.Decrypt",
        "kms.amazonaws.com",
        "Decrypt",
        True,
        ['{"encryptionAlgorithm":"SYMMETRIC_DEFAULT"}'],
    ),
    _t(
        "kms.GenerateDataKey",
        "kms.amazonaws.com",
        "GenerateDataKey",
        True,
        ['{"keySpec":"AES_256","encryptionContext":{"aws:s3:arn":"arn:aws:s3:::acme-db-backups"}}'],
    ),
    _t(
        "ecr.GetAuthorizationToken",
        "ecr.amazonaws.com",
        "GetAuthorizationToken",
        True,
        host="api.ecr.{r}.amazonaws.com",
    ),
    _t(
        "sts.AssumeRole",
        "sts.amazonaws.com",
        "AssumeRole",
        True,
        [
            '{"roleArn":"arn:aws:iam::{acct}:role/cdk-hnb659fds-deploy-role","roleSessionName":"aws-cdk-ci"}'
        ],
        host="sts.{r}.amazonaws.com",
    ),
    _t(
        "dynamodb.CreateBackup",
        "dynamodb.amazonaws.com",
        "CreateBackup",
        False,
        ['{"tableName":"orders","backupName":"orders-nightly"}'],
    ),
    _t(
        "rds.CreateDBSnapshot",
        "rds.amazonaws.com",
        "CreateDBSnapshot",
        False,
        ['{"dBSnapshotIdentifier":"orders-db-nightly","dBInstanceIdentifier":"orders-db"}'],
    ),
    _t("cloudtrail.DescribeTrails", "cloudtrail.amazonaws.com", "DescribeTrails", True),
    _t(
        "cloudtrail.LookupEvents",
        "cloudtrail.amazonaws.com",
        "LookupEvents",
        True,
        [
            '{"maxResults":50,"lookupAttributes":[{"attributeKey":"EventName","attributeValue":"ConsoleLogin"}]}'
        ],
    ),
    _t(
        "guardduty.ListFindings",
        "guardduty.amazonaws.com",
        "ListFindings",
        True,
        ['{"detectorId":"{detector}","maxResults":50}'],
    ),
    _t(
        "guardduty.GetFindings",
        "guardduty.amazonaws.com",
        "GetFindings",
        True,
        ['{"detectorId":"{detector}","findingIds":["{detector}"]}'],
    ),
    _t("securityhub.GetFindings", "securityhub.amazonaws.com", "GetFindings", True),
    # from the console (browser session)
    _t(
        "console.DescribeInstances",
        "ec2.amazonaws.com",
        "DescribeInstances",
        True,
        ['{"instancesSet":{},"filterSet":{}}'],
        console=True,
    ),
    _t(
        "console.ListBuckets",
        "s3.amazonaws.com",
        "ListBuckets",
        True,
        ['{"Host":"s3.amazonaws.com"}'],
        global_service=True,
        console=True,
        host="s3.amazonaws.com",
    ),
    _t(
        "console.DescribeAlarms",
        "monitoring.amazonaws.com",
        "DescribeAlarms",
        True,
        ['{"maxRecords":100}'],
        console=True,
    ),
    _t(
        "console.GetFunction",
        "lambda.amazonaws.com",
        "GetFunction20150331v2",
        True,
        ['{"functionName":"orders-api"}'],
        console=True,
    ),
    _t("console.ListUsers", _IAM, "ListUsers", True, global_service=True, console=True, host=_IAM),
    _t(
        "console.GetFindings",
        "guardduty.amazonaws.com",
        "GetFindings",
        True,
        ['{"detectorId":"{detector}","findingIds":["{detector}"]}'],
        console=True,
    ),
    _t(
        "signin.ConsoleLogin",
        "signin.amazonaws.com",
        "ConsoleLogin",
        False,
        response='{"ConsoleLogin":"Success"}',
        global_service=True,
        signin=True,
        host="signin.aws.amazon.com",
    ),
    # made by AWS services (their sourceIPAddress is the service's name or "AWS Internal")
    _t(
        "svc.AssumeRole",
        "sts.amazonaws.com",
        "AssumeRole",
        True,
        [
            '{"roleArn":"arn:aws:iam::{acct}:role/web-app-role","roleSessionName":"i-0a1b2c3d4e5f60718"}'
        ],
        service=True,
    ),
    _t(
        "svc.Decrypt",
        "kms.amazonaws.com",
        "Decrypt",
        True,
        [
            '{"encryptionContext":{"aws:lambda:FunctionArn":"arn:aws:lambda:us-west-2:{acct}:function:orders-api"},'
            '"encryptionAlgorithm":"SYMMETRIC_DEFAULT"}'
        ],
        service=True,
    ),
    _t(
        "svc.CreateNetworkInterface",
        "ec2.amazonaws.com",
        "CreateNetworkInterface",
        False,
        ['{"subnetId":"subnet-0c1d2e3f4a5b6c7d8","description":"AWS Lambda VPC ENI-orders-api"}'],
        service=True,
    ),
    _t(
        "svc.DescribeConfigRules", "config.amazonaws.com", "DescribeConfigRules", True, service=True
    ),
    _t(
        "svc.DescribeInstancesConfig",
        "ec2.amazonaws.com",
        "DescribeInstances",
        True,
        ['{"instancesSet":{},"filterSet":{}}'],
        service=True,
    ),
    _t(
        "svc.GetBucketEncryption",
        "s3.amazonaws.com",
        "GetBucketEncryption",
        True,
        [
            '{"bucketName":"acme-app-assets","Host":"acme-app-assets.s3.us-west-2.amazonaws.com","encryption":""}'
        ],
        service=True,
    ),
]
TEMPLATE_INDEX = {t.key: i for i, t in enumerate(TEMPLATES)}

# kind -> [(template key, weight)]
_HUMAN_COMMON = [
    ("sts.GetCallerIdentity", 6),
    ("ec2.DescribeInstances", 8),
    ("ec2.DescribeSecurityGroups", 3),
    ("ec2.DescribeVpcs", 1),
    ("ec2.DescribeSubnets", 1),
    ("s3.ListBuckets", 4),
    ("s3.GetBucketLocation", 3),
    ("s3.GetBucketPolicy", 1),
    ("lambda.ListFunctions", 3),
    ("lambda.GetFunction", 4),
    ("lambda.UpdateFunctionCode", 2),
    ("logs.DescribeLogGroups", 3),
    ("logs.FilterLogEvents", 6),
    ("cfn.DescribeStacks", 5),
    ("cfn.DescribeStackEvents", 3),
    ("iam.GetUser", 1),
    ("dynamodb.DescribeTable", 3),
    ("dynamodb.ListTables", 2),
    ("ssm.GetParameter", 2),
    ("ecr.GetAuthorizationToken", 2),
    ("console.DescribeInstances", 4),
    ("console.ListBuckets", 2),
    ("console.DescribeAlarms", 2),
    ("console.GetFunction", 3),
    ("signin.ConsoleLogin", 1),
]
CATALOGS: dict[str, list[tuple[str, float]]] = {
    "developer": _HUMAN_COMMON,
    "admin": _HUMAN_COMMON
    + [
        ("iam.ListUsers", 3),
        ("iam.ListRoles", 3),
        ("iam.ListPolicies", 2),
        ("iam.GetAccountSummary", 1),
        ("iam.AttachRolePolicy", 0.5),
        ("iam.ListAccessKeys", 1),
        ("cloudtrail.DescribeTrails", 1),
        ("console.ListUsers", 2),
        ("s3.PutBucketPolicy", 0.3),
    ],
    "analyst": [
        ("sts.GetCallerIdentity", 3),
        ("guardduty.ListFindings", 6),
        ("guardduty.GetFindings", 8),
        ("securityhub.GetFindings", 4),
        ("cloudtrail.LookupEvents", 5),
        ("console.GetFindings", 6),
        ("iam.GetAccountAuthorizationDetails", 0.5),
        ("iam.ListRoles", 1),
        ("ec2.DescribeInstances", 2),
        ("logs.FilterLogEvents", 3),
        ("signin.ConsoleLogin", 1),
    ],
    "sso": [
        ("console.DescribeInstances", 4),
        ("console.ListBuckets", 3),
        ("console.ListUsers", 2),
        ("console.DescribeAlarms", 2),
        ("iam.ListRoles", 2),
        ("iam.GetAccountSummary", 1),
        ("cfn.DescribeStacks", 2),
        ("ec2.DescribeInstances", 2),
        ("sts.GetCallerIdentity", 1),
    ],
    "root": [("signin.ConsoleLogin", 3), ("iam.GetAccountSummary", 2), ("console.ListUsers", 1)],
    "ec2-web": [
        ("ssm.UpdateInstanceInformation", 6),
        ("ssm.ListInstanceAssociations", 4),
        ("secretsmanager.GetSecretValue", 3),
        ("kms.Decrypt", 3),
        ("logs.CreateLogStream", 2),
        ("ec2.DescribeTags", 2),
        ("ssm.GetParameter", 2),
        ("sts.GetCallerIdentity", 1),
    ],
    "ec2-batch": [
        ("ssm.UpdateInstanceInformation", 3),
        ("kms.GenerateDataKey", 5),
        ("dynamodb.DescribeTable", 4),
        ("ec2.DescribeInstances", 1),
        ("ec2.DescribeTags", 2),
        ("s3.GetBucketLocation", 2),
    ],
    "ec2-bastion": [
        ("ssm.UpdateInstanceInformation", 6),
        ("ssm.ListInstanceAssociations", 3),
        ("ec2.DescribeInstances", 1),
    ],
    "lambda": [
        ("kms.Decrypt", 4),
        ("secretsmanager.GetSecretValue", 3),
        ("dynamodb.DescribeTable", 2),
        ("ssm.GetParameter", 3),
        ("sts.GetCallerIdentity", 0.5),
    ],
    "ci": [
        ("sts.GetCallerIdentity", 2),
        ("sts.AssumeRole", 3),
        ("ssm.GetParameter", 2),
        ("cfn.DescribeStacks", 5),
        ("cfn.CreateChangeSet", 2),
        ("cfn.ExecuteChangeSet", 2),
        ("cfn.DescribeStackEvents", 6),
        ("cfn.GetTemplate", 2),
        ("ecr.GetAuthorizationToken", 2),
        ("s3.GetBucketLocation", 2),
        ("lambda.UpdateFunctionCode", 1),
    ],
    "backup": [
        ("s3.ListBuckets", 1),
        ("s3.GetBucketVersioning", 3),
        ("kms.GenerateDataKey", 3),
        ("dynamodb.CreateBackup", 2),
        ("rds.CreateDBSnapshot", 1),
        ("dynamodb.DescribeTable", 2),
    ],
    "aws-service": [("svc.AssumeRole", 6), ("svc.Decrypt", 3), ("svc.CreateNetworkInterface", 1)],
    "service-role": [
        ("svc.DescribeConfigRules", 2),
        ("svc.DescribeInstancesConfig", 3),
        ("svc.GetBucketEncryption", 2),
    ],
    "aws-internal": [
        ("ec2.DescribeRegions", 2),
        ("iam.GetAccountSummary", 1),
        ("lambda.ListFunctions", 1),
        ("cloudtrail.DescribeTrails", 1),
    ],
}

_TLS = {
    "TLSv1.3": "TLS_AES_128_GCM_SHA256",
    "TLSv1.2": "ECDHE-RSA-AES128-GCM-SHA256",
}


def finalize(account_id: str, detector_id: str) -> None:
    """Render each template's fixed head and tail fragments, once per region."""
    for t in TEMPLATES:
        t.params = [
            p.replace("{acct}", account_id).replace("{detector}", detector_id) for p in t.params
        ]
        response = t.response.replace("{acct}", account_id)
        t.heads, t.tails = [], []
        for region in REGIONS:
            r = REGIONS[1] if t.global_service else region
            t.heads.append(f'"eventSource":"{t.source}","eventName":"{t.name}","awsRegion":"{r}"')
            extra = ""
            if t.signin:
                extra = (
                    ',"additionalEventData":{"LoginTo":"https://console.aws.amazon.com/console/home",'
                    '"MobileVersion":"No","MFAUsed":"Yes"}'
                )
            t.mid = f',"responseElements":{response}{extra}'
            tail = (
                f',"readOnly":{"true" if t.read_only else "false"}'
                + f',"eventType":"{"AwsConsoleSignIn" if t.signin else "AwsApiCall"}"'
                + f',"managementEvent":true,"recipientAccountId":"{account_id}"'
                + ',"eventCategory":"Management"'
            )
            if not t.service:
                version = "TLSv1.3" if not t.console else "TLSv1.2"
                tail += (
                    f',"tlsDetails":{{"tlsVersion":"{version}","cipherSuite":"{_TLS[version]}",'
                    f'"clientProvidedHostHeader":"{t.host.replace("{r}", r)}"}}'
                )
            if t.console:
                tail += ',"sessionCredentialFromConsole":"true"'
            t.tails.append(tail + "}")
