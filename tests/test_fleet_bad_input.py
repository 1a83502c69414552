"""Fleet commands: inputs never destroyed, bad files are one line (issue 17). No AWS call is
reached in any of these: the checks run before the first account is touched."""

from __future__ import annotations

import json
import os

import pytest

from secml.cli import main
from secml.errors import SecmlError
from secml.fleet.package import load_package
from secml.fleet.roster import parse_roster, read_roster
from tests.fleet_moto import write_package

ROSTER = "account_id,region,attendee\n111111111111,eu-west-1,Ada\n"


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_package(tmp_path / "pkg", "FleetTest")
    (tmp_path / "roster.csv").write_text(ROSTER)

    def no_aws(*args, **kwargs):
        raise AssertionError("an AWS session was opened before the arguments were checked")

    monkeypatch.setattr("secml.fleet.aws.AssumedRoleSessions.__call__", no_aws)
    return tmp_path


def provision(*extra):
    return [
        "fleet",
        "provision",
        "--roster",
        "roster.csv",
        "--template",
        "pkg",
        "--assets-bucket",
        "b",
        *extra,
    ]


def one_line(capsys, command, *needles):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"secml {command}: error: "), err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.mark.parametrize(
    "make_report",
    [
        lambda d: "roster.csv",  # the same file
        lambda d: os.path.relpath(d / "roster.csv"),
        lambda d: (os.symlink("roster.csv", "link.csv"), "link.csv")[1],  # a symlink to it
        lambda d: (os.link("roster.csv", "hard.csv"), "hard.csv")[1],  # a hard link of it
        lambda d: "pkg/fleet-package.json",
        lambda d: "fleet-state.json",  # the state file
    ],
)
def test_report_that_is_an_input_is_refused_and_the_input_kept(workdir, capsys, make_report):
    (workdir / "fleet-state.json").write_text(
        json.dumps({"version": 1, "stack_name": "FleetTest", "accounts": {}})
    )
    report = make_report(workdir)
    before = {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file()}
    assert main(provision("--report", report)) == 2
    one_line(capsys, "fleet provision", "also an input")
    assert {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file()} == before


def test_state_that_is_the_roster_is_refused(workdir, capsys):
    assert main(provision("--state", "roster.csv")) == 2
    one_line(capsys, "fleet provision", "--state roster.csv is also an input")
    assert (workdir / "roster.csv").read_text() == ROSTER


def test_report_naming_a_folder_or_under_a_file_is_refused_first(workdir, capsys):
    (workdir / "out").mkdir()
    assert main(provision("--report", "out")) == 2
    one_line(capsys, "fleet provision", "is a folder")
    assert main(provision("--report", "roster.csv/report.csv")) == 2
    one_line(capsys, "fleet provision", "is a file")
    assert main(["fleet", "teardown", "--stack-name", "X", "--report", "out"]) == 2
    one_line(capsys, "fleet teardown", "is a folder")


def test_roster_in_windows_1252_is_one_line(workdir, capsys):
    (workdir / "roster.csv").write_bytes("111111111111,eu-west-1,Zoë\n".encode("cp1252"))
    assert main(provision()) == 2
    one_line(capsys, "fleet provision", "line 1: not UTF-8", "CSV UTF-8")


def test_full_width_account_id_fails_validation():
    with pytest.raises(SecmlError, match="line 1: account id .* non-ASCII digits"):
        parse_roster("１１１１１１１１１１１１,eu-west-1\n", default_region=None)
    with pytest.raises(SecmlError, match="line 2"):
        parse_roster("111111111111,eu-west-1\n١١١١١١١١١١١١,eu-west-1\n", default_region=None)


def test_header_after_comments_and_blank_lines_is_accepted():
    text = (
        "# workshop 12 May\n\n# one per attendee\n"
        "account_id,region,attendee\n111111111111,eu-west-1,Ada\n"
    )
    (target,) = parse_roster(text, default_region=None)
    assert (target.account_id, target.line) == ("111111111111", 5)
    with pytest.raises(SecmlError, match="line 3: account id 'account_id'"):
        parse_roster("111111111111,eu-west-1\n\naccount_id,region\n", default_region=None)


def test_a_stray_quote_in_the_roster_costs_one_line_only(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text('"111111111111,eu-west-1\n222222222222,eu-west-1\n')
    with pytest.raises(SecmlError) as caught:
        read_roster(path, default_region=None)
    assert "line 1" in str(caught.value) and "line 2" not in str(caught.value)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{trunc", "corrupt (not JSON"),
        ("", "corrupt (not JSON"),
        ("[1, 2]", "not a fleet state file"),
        ('{"accounts": {}}', "not a fleet state file"),
        ('{"version": 1, "stack_name": "S", "accounts": []}', "wrong type"),
        ('{"version": 1, "stack_name": "S", "accounts": {"a": 3}}', "account 'a' is a int"),
        ('{"version": 1, "stack_name": "S", "accounts": {"a": {"status": "x"}}}', "incomplete"),
        ('{"version": 7, "stack_name": "S", "accounts": {}}', "unknown state version 7"),
    ],
)
def test_state_file_corrupt_or_of_the_wrong_shape_is_one_line(workdir, capsys, content, needle):
    (workdir / "fleet-state.json").write_text(content)
    for command in (["status"], ["teardown"], ["status", "--stack-name", "S"]):
        assert main(["fleet", *command]) == 2
        err = one_line(capsys, f"fleet {command[0]}", needle)
        assert "no state file" not in err


def test_missing_state_file_still_says_so(workdir, capsys):
    assert main(["fleet", "status"]) == 2
    one_line(capsys, "fleet status", "no state file fleet-state.json")


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        (lambda p: (p / "fleet-package.json").write_text(""), "not readable JSON"),
        (lambda p: (p / "fleet-package.json").write_text("{}"), "not a fleet package manifest"),
        (lambda p: (p / "fleet-package.json").write_text("[]"), "not a fleet package manifest"),
        (lambda p: (p / "assets" / "FleetTest.template.json").unlink(), "which is missing"),
        (lambda p: (p / "assets" / "FleetTest.template.json").write_text("{"), "not a readable"),
        (lambda p: (p / "assets" / "FleetTest.template.json").write_text("{}"), "no Resources"),
    ],
)
def test_package_manifest_empty_or_naming_a_missing_template(workdir, capsys, damage, needle):
    damage(workdir / "pkg")
    with pytest.raises(SecmlError, match=needle):
        load_package(workdir / "pkg")
    assert main(provision()) == 2
    one_line(capsys, "fleet provision", needle)


def test_error_lines_quote_a_short_prefix_of_a_huge_value(tmp_path, capsys):
    junk = "9" * 20_000
    assert (
        main(["fleet", "preflight", "--roster", str(_write(tmp_path, f"{junk},eu-west-1\n"))]) == 2
    )
    assert len(capsys.readouterr().err) < 300
    assert main(["fleet", "preflight", "--roster", str(_write(tmp_path, f"1,{junk},a,b\n"))]) == 2
    assert len(capsys.readouterr().err) < 300
    (tmp_path / "s.json").write_text(json.dumps({"version": junk, "stack_name": "S"}))
    assert main(["fleet", "status", "--state", str(tmp_path / "s.json")]) == 2
    assert len(capsys.readouterr().err) < 300


def _write(folder, text):
    path = folder / "roster.csv"
    path.write_text(text)
    return path
