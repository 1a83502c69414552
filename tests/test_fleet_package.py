"""`fleet package`: a template that needs no bootstrap, with every asset it names on disk."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from secml.errors import SecmlError
from secml.fleet.package import load_package, package_app
from tests.fleet_fixture import build_fixture_app

PREFIX_KEY = re.compile(r"^\$\{AssetsBucketPrefix\}([^/${}]+)$")


@pytest.fixture(scope="module")
def fixture_package(tmp_path_factory):
    out = tmp_path_factory.mktemp("fixture-package")
    package_app(out, stack_name="FleetFixture", build_app=build_fixture_app)
    package, template = load_package(out)
    return out, package, template


@pytest.fixture(scope="module")
def workshop_package(tmp_path_factory):
    """The real WorkshopStack through stacks/app.py (fleet=true), cdk-nag included."""
    # Also: its template fits CreateStack's TemplateBody, so provision needs no template URL.
    out = tmp_path_factory.mktemp("workshop-package")
    package_app(out, stack_name="SecmlWorkshop")
    return out, *load_package(out)


def referenced_asset_keys(node) -> set[str]:
    """Every object key the template builds from ${AssetsBucketPrefix}."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Fn::Sub" and isinstance(value, str) and "${AssetsBucketPrefix}" in value:
                match = PREFIX_KEY.match(value)
                assert match, f"unexpected asset key expression {value!r}"
                found.add(match.group(1))
            else:
                found |= referenced_asset_keys(value)
    elif isinstance(node, list):
        for item in node:
            found |= referenced_asset_keys(item)
    return found


@pytest.mark.parametrize("which", ["fixture_package", "workshop_package"])
def test_template_takes_asset_parameters_and_has_no_bootstrap_contract(which, request):
    out, package, template = request.getfixturevalue(which)
    params = template["Parameters"]
    assert {"AssetsBucketName", "AssetsBucketPrefix", "ParticipantRoleName"} <= set(params)
    assert "BootstrapVersion" not in params
    assert "CheckBootstrapVersion" not in template.get("Rules", {})
    text = json.dumps(template)
    assert "cdk-hnb659fds" not in text  # no bootstrap bucket or role anywhere
    assert (out / package.template).is_file()


def test_every_referenced_asset_is_packaged_under_its_key(fixture_package):
    out, package, template = fixture_package
    keys = referenced_asset_keys(template["Resources"])
    assert len(keys) == 4  # handler code, deployment source, deployment handler, CLI layer
    assert keys == {a.key for a in package.assets}
    for key in keys:
        assert (out / "assets" / key).is_file(), key
    fn_code = template["Resources"][_logical_id(template, "AWS::Lambda::Function", "index.")]
    assert fn_code["Properties"]["Code"]["S3Bucket"] == {"Fn::Sub": "${AssetsBucketName}"}


def test_directory_assets_are_zipped_with_files_at_the_root(fixture_package):
    out, package, _ = fixture_package
    zipped = {a.source: out / "assets" / a.key for a in package.assets if a.packaging == "zip"}
    with zipfile.ZipFile(zipped["Fn/Code"]) as archive:
        assert archive.namelist() == ["index.py"]
        assert (archive.getinfo("index.py").external_attr >> 16) & 0o444 == 0o444
    with zipfile.ZipFile(zipped["Deploy/Asset1"]) as archive:
        assert archive.namelist() == ["sample.json"]


def test_packaging_is_deterministic(fixture_package, tmp_path):
    _, package, _ = fixture_package
    again = package_app(tmp_path / "again", stack_name="FleetFixture", build_app=build_fixture_app)
    assert [(a.key, a.sha256) for a in again.assets] == [(a.key, a.sha256) for a in package.assets]


def test_participant_policy_is_conditional_and_scoped(fixture_package):
    _, _, template = fixture_package
    [(lid, policy)] = [
        (k, r) for k, r in template["Resources"].items() if r["Type"] == "AWS::IAM::ManagedPolicy"
    ]
    condition = template["Conditions"][policy["Condition"]]
    assert condition == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ParticipantRoleName"}, ""]}]}
    assert policy["Properties"]["Roles"] == [{"Ref": "ParticipantRoleName"}]
    by_sid = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert "lambda:InvokeFunction" in by_sid["IngestFunctions"]["Action"]
    assert "*" not in json.dumps(by_sid["IngestFunctions"]["Resource"])
    notebook = json.dumps(by_sid["OpenNotebook"]["Resource"])
    assert "notebook-instance/workshop-notebook" in notebook
    assert by_sid["OpenNotebook"]["Action"][0] == "sagemaker:CreatePresignedNotebookInstanceUrl"


@pytest.mark.parametrize("which", ["fixture_package", "workshop_package"])
def test_cfn_lint_clean(which, request):
    out, package, _ = request.getfixturevalue(which)
    # W3005 (DependsOn next to a GetAtt) is how the CDK writes every Lambda's role dependency.
    cmd = [str(Path(sys.executable).parent / "cfn-lint"), "--ignore-checks", "W3005", "--"]
    result = subprocess.run(
        [*cmd, str(out / package.template)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cdk_nag_finding_fails_the_package(tmp_path):
    def violating_app(context=None, *, outdir=None):
        return build_fixture_app(context, outdir=outdir, violate=True)

    with pytest.raises(SecmlError, match="cdk-nag"):
        package_app(tmp_path / "out", stack_name="FleetFixture", build_app=violating_app)
    report = json.loads((tmp_path / "out" / "validation-report.json").read_text())
    assert "AwsSolutions-S10" in json.dumps(report)
    assert not (tmp_path / "out" / "fleet-package.json").exists()


def test_refuses_a_directory_that_is_not_a_package(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    from secml.fleet.package import package_from_assembly

    with pytest.raises(SecmlError, match="not an earlier fleet package"):
        package_from_assembly(Path("."), "X", tmp_path)


def _logical_id(template, rtype: str, handler_prefix: str) -> str:
    for lid, res in template["Resources"].items():
        if res["Type"] == rtype and res["Properties"].get("Handler", "").startswith(handler_prefix):
            return lid
    raise AssertionError(f"no {rtype} with handler {handler_prefix}*")


def test_workshop_package_carries_every_asset_and_wires_the_participant(workshop_package):
    out, package, template = workshop_package
    keys = referenced_asset_keys(template["Resources"])
    assert keys == {a.key for a in package.assets}
    assert all((out / "assets" / k).is_file() for k in keys)
    body = json.dumps(template, separators=(",", ":"), sort_keys=True)
    assert len(body.encode()) <= 51_200
    [policy] = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::ManagedPolicy"]
    sids = {s["Sid"] for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert {"IngestFunctions", "WorkshopBuckets", "OpenNotebook", "FunctionLogs"} <= sids
    assert any("notebook" in k.lower() and k.endswith("Url") for k in template["Outputs"])


GOOD_PREFIXES = ["", "assets/", "secml/v1.2/", "event_2026-12/assets/"]
BAD_PREFIXES = [
    "assets",  # no trailing slash: the keys would run into the file names
    "/assets/",
    "a//b/",
    "it's/",
    'say"hi"/',
    "$(reboot)/",
    "`id`/",
    "a b/",
    "a;b/",
    "a\\b/",
    "x&y/",
    "new\nline/",
]


@pytest.mark.parametrize("prefix", GOOD_PREFIXES + BAD_PREFIXES)
def test_assets_prefix_pattern_refuses_what_is_unsafe_in_the_on_create_script(
    prefix, workshop_package
):
    """The prefix is part of the notebook's object key, quoted inside the on-create script.

    CloudFormation matches AllowedPattern against the whole value (Java regex; this pattern
    means the same in Python's re)."""
    _, _, template = workshop_package
    pattern = template["Parameters"]["AssetsBucketPrefix"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, prefix)) is (prefix in GOOD_PREFIXES)


def test_asset_readers_read_only_the_templates_own_prefix(workshop_package):
    _, _, template = workshop_package
    on_assets = [
        statement
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy"
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
        if "AssetsBucketName" in json.dumps(statement)
    ]
    assert on_assets
    for statement in on_assets:
        text = json.dumps(statement["Resource"])
        assert "AssetsBucketPrefix" in text, statement  # never the whole bucket
        assert statement["Action"] == "s3:GetObject", statement
    prefix_wide = [s for s in on_assets if json.dumps(s["Resource"]).endswith('"*"]]}')]
    assert [s["Resource"]["Fn::Join"][1][3:] for s in prefix_wide] == [
        [{"Ref": "AssetsBucketName"}, "/", {"Ref": "AssetsBucketPrefix"}, "*"]
    ]


def test_facilitator_contentspec_snippet_matches_the_packaged_template(workshop_package):
    """docs/facilitator.md's Workshop Studio snippet maps exactly the template's parameters."""
    import yaml

    _, package, template = workshop_package
    doc = (Path(__file__).resolve().parents[1] / "docs" / "facilitator.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", doc, flags=re.S)
    (snippet,) = [yaml.safe_load(b) for b in blocks if "cloudformationTemplates" in b]
    (entry,) = snippet["infrastructure"]["cloudformationTemplates"]
    assert entry["templateLocation"] == f"static/{package.template_key}"
    mapped = {p["templateParameter"]: p["defaultValue"] for p in entry["parameters"]}
    declared = template["Parameters"]
    assert set(mapped) <= set(declared), "the snippet maps a parameter the template lacks"
    required = {name for name, spec in declared.items() if "Default" not in spec}
    assert required <= set(mapped), "a parameter without a default is not mapped"
    assert mapped == {
        "AssetsBucketName": "{{.AssetsBucketName}}",
        "AssetsBucketPrefix": "{{.AssetsBucketPrefix}}",
        "ParticipantRoleName": "WSParticipantRole",
    }
