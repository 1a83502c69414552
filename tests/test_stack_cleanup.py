"""`cdk destroy` leaves nothing behind: what the template guarantees (issue 7)."""

from __future__ import annotations

import re

import pytest

from tests.stack_support import as_list, logical_id, resources, statements_of_role, workshop


@pytest.fixture(scope="module")
def synthesized():
    return workshop()


@pytest.fixture(scope="module")
def cleanup(synthesized):
    _, template = synthesized
    ((cleanup_id, cleanup_resource),) = resources(template, "Custom::WorkshopCleanup").items()
    return cleanup_id, cleanup_resource


def test_no_resource_is_retained_or_snapshotted_on_delete(synthesized):
    _, template = synthesized
    for name, resource in template.to_json()["Resources"].items():
        for key in ("DeletionPolicy", "UpdateReplacePolicy"):
            assert resource.get(key, "Delete") not in (
                "Retain",
                "RetainExceptOnCreate",
                "Snapshot",
            ), name


def test_every_function_logs_to_a_log_group_the_stack_deletes(synthesized):
    _, template = synthesized
    groups = resources(template, "AWS::Logs::LogGroup")
    functions = resources(template, "AWS::Lambda::Function")
    assert len(functions) >= 7  # ours, both providers' frameworks, the dataset deployment
    for name, fn in functions.items():
        group_ref = fn["Properties"].get("LoggingConfig", {}).get("LogGroup")
        assert group_ref and "Ref" in group_ref, f"{name} would log to /aws/lambda/... on its own"
        group = groups[group_ref["Ref"]]
        assert group["DeletionPolicy"] == "Delete", name


def test_no_lambda_outside_the_template_is_created_by_cdk_internals(synthesized):
    _, template = synthesized
    raw = template.to_json()["Resources"]
    assert not [k for k, v in raw.items() if v["Type"] == "Custom::S3AutoDeleteObjects"]


def test_cleanup_is_deleted_before_the_buckets_and_role_it_needs(synthesized, cleanup):
    stack, _ = synthesized
    _, resource = cleanup
    needed = {
        logical_id(stack, stack.data.data_bucket),
        logical_id(stack, stack.data.tuples_bucket),
        logical_id(stack, stack.notebook.role),
    }
    assert needed <= set(resource["DependsOn"])
    assert resource["Properties"]["NotebookRoleArn"] == {
        "Fn::GetAtt": [logical_id(stack, stack.notebook.role), "Arn"]
    }
    assert resource["Properties"]["StackName"] == stack.stack_name
    assert resource["Properties"]["TagKey"] == "secml:stack"


def test_notebook_instance_is_deleted_before_the_cleanup_runs(synthesized, cleanup):
    _, template = synthesized
    cleanup_id, _ = cleanup
    (instance,) = resources(template, "AWS::SageMaker::NotebookInstance").values()
    assert cleanup_id in instance["DependsOn"]


def test_cleanup_may_delete_endpoints_only_when_they_carry_the_stack_tag(synthesized):
    stack, template = synthesized
    role_id = logical_id(stack, stack.cleanup.handler.role)
    statements = statements_of_role(template, role_id)
    deletes = [s for s in statements if "sagemaker:DeleteEndpoint" in as_list(s["Action"])]
    assert len(deletes) == 1
    assert deletes[0]["Condition"] == {
        "StringEquals": {"aws:ResourceTag/secml:stack": stack.stack_name}
    }
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert not {a for a in actions if a.startswith("s3:") and "Put" in a}


def _framework_on_event(template, prefix: str) -> dict:
    (fn,) = [
        fn
        for name, fn in resources(template, "AWS::Lambda::Function").items()
        if name.startswith(prefix) and "framework - onEvent" in fn["Properties"]["Description"]
    ]
    return fn


# Issue 12, item 4: CloudFormation waits an hour for a custom resource that never answers.
def test_cleanup_answers_before_the_provider_framework_and_cloudformation_gives_up(synthesized):
    from tests.handler_support import load_handler

    stack, template = synthesized
    handler = resources(template, "AWS::Lambda::Function")[logical_id(stack, stack.cleanup.handler)]
    handler_s = handler["Properties"]["Timeout"]
    framework_s = _framework_on_event(template, "Cleanup")["Properties"]["Timeout"]
    (resource,) = resources(template, "Custom::WorkshopCleanup").values()
    service_s = int(resource["Properties"]["ServiceTimeout"])

    assert handler_s + 120 <= framework_s  # the framework reports the handler's timeout itself
    assert framework_s <= service_s <= 20 * 60  # and CloudFormation stops waiting soon after
    reserve = load_handler("cleanup").RESERVE_S
    assert 60 <= reserve < handler_s  # the handler's waits end before its own timeout


def _depends_on(template: dict, resource_id: str) -> set[str]:
    """Every resource this one waits for on create: DependsOn, Ref and GetAtt, transitively."""
    raw = template["Resources"]

    def direct(name: str) -> set[str]:
        found = set(as_list(raw[name].get("DependsOn", [])))

        def walk(value) -> None:
            if isinstance(value, dict):
                if "Ref" in value and value["Ref"] in raw:
                    found.add(value["Ref"])
                if "Fn::GetAtt" in value:
                    found.add(value["Fn::GetAtt"][0])
                for inner in value.values():
                    walk(inner)
            elif isinstance(value, list):
                for inner in value:
                    walk(inner)

        walk(raw[name].get("Properties", {}))
        return found

    seen: set[str] = set()
    todo = [resource_id]
    while todo:
        for dependency in direct(todo.pop()) - seen:
            seen.add(dependency)
            todo.append(dependency)
    return seen


def _assert_bucket_writers_come_after_the_cleanup(template: dict, bucket_ids: set[str]) -> int:
    raw = template["Resources"]
    (cleanup_id,) = [k for k, v in raw.items() if v["Type"] == "Custom::WorkshopCleanup"]
    writers = [
        name
        for name, resource in raw.items()
        if name != cleanup_id
        and (
            resource["Type"] == "AWS::SageMaker::NotebookInstance"
            or (
                resource["Type"].startswith("Custom::") and bucket_ids & _depends_on(template, name)
            )
        )
    ]
    for name in writers:
        assert cleanup_id in _depends_on(template, name), f"{name} may write before the cleanup"
    return len(writers)


# Issue 12, item 7: a create that fails after the dataset upload must be able to roll back.
def test_everything_that_writes_into_a_bucket_at_deploy_time_comes_after_the_cleanup(synthesized):
    stack, template = synthesized
    buckets = {logical_id(stack, b) for b in (stack.data.data_bucket, stack.data.tuples_bucket)}
    assert _assert_bucket_writers_come_after_the_cleanup(template.to_json(), buckets) >= 2
    (deployment,) = resources(template, "Custom::CDKBucketDeployment").values()
    assert (
        stack.resolve(stack.cleanup.resource.node.default_child.logical_id)
        in deployment["DependsOn"]
    )


def test_in_the_fleet_template_too_bucket_writers_come_after_the_cleanup():
    from aws_cdk.assertions import Template

    from stacks.app import DEFAULT_STACK_NAME, build_app

    stack = build_app({"fleet": "true"}).node.find_child(DEFAULT_STACK_NAME)
    template = Template.from_stack(stack).to_json()
    buckets = {logical_id(stack, b) for b in (stack.data.data_bucket, stack.data.tuples_bucket)}
    assert _assert_bucket_writers_come_after_the_cleanup(template, buckets) >= 2


# What the role's ARN patterns are rendered with: any account, region and partition will do.
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "eu-west-1", "AWS::AccountId": "123456789012"}


def _rendered(value) -> str:
    """A statement's resource as a string: pseudo parameters filled in, anything else marked."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return PSEUDO.get(value["Ref"], "<unresolved>")
    if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        return re.sub(
            r"\$\{([^}]+)\}", lambda m: PSEUDO.get(m[1], "<unresolved>"), value["Fn::Sub"]
        )
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_rendered(part) for part in parts)
    return "<unresolved>"


def _matches(pattern: str, value: str) -> bool:
    """IAM's wildcards: * is any run of characters (":" and "/" included), ? is one."""
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, value) is not None


def _allows(statements: list[dict], action: str, arn: str, tags: dict[str, str]) -> bool:
    """Whether an Allow statement covers the call; conditions other than resource tags fail."""
    for statement in statements:
        if statement["Effect"] != "Allow":
            continue
        if not any(_matches(a, action) for a in as_list(statement["Action"])):
            continue
        if not any(_matches(_rendered(r), arn) for r in as_list(statement["Resource"])):
            continue
        conditions = statement.get("Condition", {})
        if set(conditions) - {"StringEquals"}:
            continue
        wanted = conditions.get("StringEquals", {})
        if all(
            key.startswith("aws:ResourceTag/") and tags.get(key.split("/", 1)[1]) == value
            for key, value in wanted.items()
        ):
            return True
    return False


def _handler_calls(pattern: str) -> set[str]:
    from tests.handler_support import LAMBDA_SRC

    return set(re.findall(pattern, (LAMBDA_SRC / "cleanup" / "index.py").read_text()))


def _action(service: str, call: str) -> str:
    return f"{service}:" + "".join(part.title() for part in call.split("_"))


@pytest.fixture(scope="module")
def cleanup_statements(synthesized) -> list[dict]:
    stack, template = synthesized
    return statements_of_role(template, logical_id(stack, stack.cleanup.handler.role))


def _sagemaker_actions() -> set[str]:
    calls = _handler_calls(r"\bsm\.([a-z_]+)\(")
    calls |= _handler_calls(r'(?:candidates\(|_pages\(self\.sagemaker,)\s*"([a-z_]+)"')
    return {_action("sagemaker", call) for call in calls}


def _logs_actions() -> set[str]:
    calls = _handler_calls(r"\blogs\.([a-z_]+)\(") - {"get_paginator"}
    calls |= _handler_calls(r'\blogs\.get_paginator\("([a-z_]+)"\)')
    return {_action("logs", call) for call in calls}


def test_cleanup_role_allows_every_sagemaker_and_logs_call_the_handler_makes(
    cleanup_statements,
):
    """No AWS account here: a missing grant would first show as AccessDenied on a real destroy."""
    wanted = _sagemaker_actions() | _logs_actions()
    assert {"sagemaker:DescribeEndpoint", "sagemaker:ListTrainingJobs"} <= wanted
    assert {"logs:DescribeLogStreams", "logs:DeleteLogStream", "logs:DeleteLogGroup"} <= wanted
    granted = {a for s in cleanup_statements for a in as_list(s["Action"])}
    assert wanted - granted == set()


def _kind(action: str) -> str | None:
    """sagemaker:StopHyperParameterTuningJob -> hyper-parameter-tuning-job (None: a List call)."""
    name = action.split(":", 1)[1]
    for verb in ("Describe", "Stop", "Delete"):
        if name.startswith(verb):
            return re.sub(r"(?<!^)(?=[A-Z])", "-", name.removeprefix(verb)).lower()
    return None


def test_cleanup_role_stops_describes_and_deletes_only_secml_named_sagemaker_resources(
    synthesized, cleanup_statements
):
    """The handler acts on secml-* names only; the role now says so too (issue 12)."""
    from stacks.notebook import RESOURCE_NAME_PREFIX

    stack, _ = synthesized
    tags = {"secml:stack": stack.stack_name}
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:{}/{}"
    checked = 0
    for action in sorted(_sagemaker_actions()):
        kinds = [_kind(action)] if _kind(action) else []
        if action == "sagemaker:ListTags":
            kinds = ["training-job", "model", "endpoint-config", "endpoint", "transform-job"]
        for kind in kinds:
            ours = arn.format(kind, f"{RESOURCE_NAME_PREFIX}ipinsights-20261205-101500-ab12")
            assert _allows(cleanup_statements, action, ours, tags), (action, ours)
            for other in ("other-team-model", "ipinsights-secml-1"):
                theirs = arn.format(kind, other)
                assert not _allows(cleanup_statements, action, theirs, tags), (action, theirs)
            checked += 1
    assert checked >= 15


def test_cleanup_role_deletes_only_the_logs_of_secml_jobs_and_endpoints(cleanup_statements):
    """Stream deletes in the shared job groups by secml- prefix; whole groups only for
    secml- endpoints (each endpoint has a group of its own)."""
    from tests.handler_support import load_handler

    handler = load_handler("cleanup")
    job_groups = (handler.TRAINING_LOGS, handler.TRANSFORM_LOGS)
    group = "arn:aws:logs:eu-west-1:123456789012:log-group:{}"
    stream = group + ":log-stream:{}"
    job = "secml-ipinsights-20261205-101500-ab12"
    allowed = [
        *[("logs:DescribeLogStreams", group.format(g) + ":*") for g in job_groups],
        *[
            ("logs:DeleteLogStream", stream.format(g, f"{job}/algo-1-1764930000"))
            for g in job_groups
        ],
        ("logs:DeleteLogGroup", group.format(f"{handler.ENDPOINT_LOGS}{job}")),
        ("logs:DeleteLogGroup", group.format(f"{handler.ENDPOINT_LOGS}{job}") + ":*"),
    ]
    refused = [
        ("logs:DescribeLogStreams", group.format("/aws/sagemaker/NotebookInstances")),
        ("logs:DeleteLogStream", stream.format(handler.TRAINING_LOGS, "other-job/algo-1-1")),
        ("logs:DeleteLogStream", stream.format("/aws/sagemaker/NotebookInstances", job)),
        ("logs:DeleteLogStream", stream.format(f"{handler.ENDPOINT_LOGS}other", job)),
        ("logs:DeleteLogGroup", group.format(handler.TRAINING_LOGS)),
        ("logs:DeleteLogGroup", group.format(handler.TRANSFORM_LOGS)),
        ("logs:DeleteLogGroup", group.format(f"{handler.ENDPOINT_LOGS}other-endpoint")),
        ("logs:DeleteLogGroup", group.format("/aws/sagemaker/NotebookInstances")),
    ]
    for action, arn in allowed:
        assert _allows(cleanup_statements, action, arn, {}), (action, arn)
    for action, arn in refused:
        assert not _allows(cleanup_statements, action, arn, {}), (action, arn)
