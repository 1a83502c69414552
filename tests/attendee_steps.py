"""The attendee guide, step by step, and the console actions each step needs.

Each row quotes the step in docs/workshop.md (the test checks the quote is still there, so a
changed guide sends the reader back here) and lists the IAM actions the console calls for it.
The participant policy (stacks/participant.py) must grant exactly the union of these.
"""

from __future__ import annotations

GUIDE_STEPS: list[tuple[str, set[str]]] = [
    # What is already set up: the names of everything are the stack's outputs.
    (
        "The stack outputs are on the CloudFormation console",
        {"cloudformation:ListStacks", "cloudformation:DescribeStacks"},
    ),
    # Exercise 1.1: the findings page (detector, account status, trial banner, findings list,
    # the summary counts) and its details panel.
    (
        "Open the **GuardDuty** console and choose **Findings**",
        {
            "guardduty:ListDetectors",
            "guardduty:GetDetector",
            "guardduty:GetAdministratorAccount",
            "guardduty:GetRemainingFreeTrialDays",
            "guardduty:ListFindings",
            "guardduty:GetFindings",
            "guardduty:GetFindingsStatistics",
        },
    ),
    # The filter bar lists saved filters and filters the findings list.
    ("add a filter *Finding type*", {"guardduty:ListFilters", "guardduty:ListFindings"}),
    ("choose the JSON view", {"guardduty:GetFindings"}),
    # Exercise 1.2 / 2.1 / 2.2: the function page (code editor, versions, aliases, permissions,
    # tags), Test, Deploy.
    (
        "Open the **Lambda** console and the function named in",
        {
            "lambda:ListFunctions",
            "lambda:GetFunction",
            "lambda:GetFunctionConfiguration",
            "lambda:ListVersionsByFunction",
            "lambda:ListAliases",
            "lambda:GetPolicy",
            "lambda:ListTags",
        },
    ),
    ("Choose **Test**", {"lambda:InvokeFunction"}),
    # The Test result shows the last 4 KB of the log; the whole of it (every finding) is in the
    # function's log group, which the result links to.
    (
        "choose the **CloudWatch logs** link in the execution result",
        {
            "logs:DescribeLogGroups",
            "logs:DescribeLogStreams",
            "logs:GetLogEvents",
            "logs:FilterLogEvents",
        },
    ),
    ("Choose **Deploy**", {"lambda:UpdateFunctionCode"}),
    # Exercise 2.1 step 5: the bucket list, the bucket, the file.
    (
        "In the S3 console, open the tuples bucket",
        {"s3:ListAllMyBuckets", "s3:GetBucketLocation", "s3:ListBucket"},
    ),
    ("Open it: one `principal,ip` line per event", {"s3:GetObject"}),
    # Exercise 3 step 1-2.
    (
        "**Notebook instances**",
        {"sagemaker:ListNotebookInstances", "sagemaker:DescribeNotebookInstance"},
    ),
    ("If its status is *Stopped*, choose **Start**", {"sagemaker:StartNotebookInstance"}),
    ("Choose **Open JupyterLab**", {"sagemaker:CreatePresignedNotebookInstanceUrl"}),
]

# Actions that name no resource (console lists) or are account-wide (GuardDuty reads): "*".
UNSCOPED = {
    "cloudformation:ListStacks",
    "lambda:ListFunctions",
    "s3:ListAllMyBuckets",
    "sagemaker:ListNotebookInstances",
    "logs:DescribeLogGroups",
    "guardduty:ListDetectors",
    "guardduty:GetDetector",
    "guardduty:GetAdministratorAccount",
    "guardduty:GetRemainingFreeTrialDays",
    "guardduty:ListFindings",
    "guardduty:GetFindings",
    "guardduty:GetFindingsStatistics",
    "guardduty:ListFilters",
}


def needed_actions() -> set[str]:
    return set().union(*(actions for _, actions in GUIDE_STEPS))
