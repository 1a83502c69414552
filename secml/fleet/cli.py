"""`python -m secml fleet package|preflight|provision|status|teardown|stackset`.

Facilitator tooling for one workshop environment per attendee account
(docs/facilitator.md, "Facilitators: many accounts"). boto3, rich and the CDK are imported
inside the commands.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from secml.errors import SecmlError

DEFAULT_PACKAGE = "fleet-package"
DEFAULT_STATE = "fleet-state.json"
DEFAULT_ROLE = "OrganizationAccountAccessRole"
DEFAULT_STACK = "SecmlWorkshop"


def register(subparsers: argparse._SubParsersAction) -> None:
    fleet = subparsers.add_parser(
        "fleet",
        help="provision / remove one environment per attendee account",
        description="Facilitator tooling: one workshop environment per attendee account.",
    )
    sub = fleet.add_subparsers(dest="fleet_command", metavar="SUBCOMMAND", required=True)

    p = sub.add_parser("package", help="synthesize a bootstrap-free template + assets into DIR")
    p.add_argument("--out", required=True, type=Path, metavar="DIR")
    p.add_argument("--stack-name", default=DEFAULT_STACK)
    p.add_argument(
        "-c", "--context", action="append", default=[], metavar="KEY=VALUE", help="CDK context"
    )
    p.set_defaults(func=run_package)

    def accounts_args(p: argparse.ArgumentParser, *, roster_required: bool) -> None:
        p.add_argument(
            "--roster",
            type=Path,
            required=roster_required,
            metavar="FILE",
            help="CSV: account_id[,region][,attendee]",
        )
        p.add_argument("--state", type=Path, default=Path(DEFAULT_STATE), metavar="FILE")
        p.add_argument("--stack-name", help="default: the package's (or the state file's)")
        p.add_argument("--role-name", default=DEFAULT_ROLE, help="role to assume in each account")
        p.add_argument("--external-id", help="sts:ExternalId, if the role requires one")
        p.add_argument("--parallel", type=int, default=20, help="accounts at a time (default 20)")
        p.add_argument("--region", help="for roster lines without one (default: AWS_REGION)")
        p.add_argument("--poll-seconds", type=float, default=15.0, help=argparse.SUPPRESS)
        p.add_argument("--timeout-minutes", type=float, default=60.0)

    p = sub.add_parser(
        "preflight",
        help="the day before: check every roster account (region, GuardDuty, SageMaker quotas)",
        description="Check each roster account for what the workshop needs: the region, "
        "GuardDuty (none, or enabled; not suspended) and the SageMaker instance quotas of the "
        "notebook, the training job and the endpoint. Exit 1 if any account is not ready.",
    )
    p.add_argument("--roster", type=Path, required=True, metavar="FILE")
    p.add_argument("--role-name", default=DEFAULT_ROLE, help="role to assume in each account")
    p.add_argument("--external-id", help="sts:ExternalId, if the role requires one")
    p.add_argument("--parallel", type=int, default=20, help="accounts at a time (default 20)")
    p.add_argument("--region", help="for roster lines without one (default: AWS_REGION)")
    p.add_argument("--notebook-instance-type", default="ml.t3.medium")
    p.add_argument("--training-instance-type", default="ml.m5.large")
    p.add_argument("--endpoint-instance-type", default="ml.m5.large")
    p.set_defaults(func=run_preflight)

    p = sub.add_parser("provision", help="create or update the stack in every roster account")
    accounts_args(p, roster_required=True)
    p.add_argument("--template", type=Path, default=Path(DEFAULT_PACKAGE), metavar="DIR")
    template_args(p)
    p.add_argument("--report", type=Path, default=Path("fleet-report.csv"), metavar="FILE")
    p.add_argument("--force", action="store_true", help="redo accounts already deployed")
    p.set_defaults(func=run_provision)

    p = sub.add_parser("status", help="show the state file (or, with --refresh, ask AWS)")
    accounts_args(p, roster_required=False)
    p.add_argument("--refresh", action="store_true", help="describe the stack in every account")
    p.set_defaults(func=run_status)

    p = sub.add_parser("teardown", help="delete the stack everywhere, then check for leftovers")
    accounts_args(p, roster_required=False)
    p.add_argument("--report", type=Path, default=Path("fleet-teardown.csv"), metavar="FILE")
    p.set_defaults(func=run_teardown)

    p = sub.add_parser("stackset", help="Organizations scale: one service-managed StackSet")
    p.add_argument("--template", type=Path, default=Path(DEFAULT_PACKAGE), metavar="DIR")
    p.add_argument("--name", help="StackSet name (default: the package's stack name)")
    p.add_argument("--ou", default="", help="ou-xxxx-yyyyyyyy[,ou-...] (or r-xxxx, the root)")
    p.add_argument("--regions", default="", help="eu-west-1[,us-east-1,...]")
    template_args(p)
    p.add_argument("--max-concurrent-percentage", type=int, default=25)
    p.add_argument("--failure-tolerance-percentage", type=int, default=10)
    p.add_argument("--call-as", choices=["SELF", "DELEGATED_ADMIN"], default="SELF")
    p.add_argument("--region", help="the administrator region for the StackSet API")
    p.add_argument("--delete", action="store_true", help="remove every instance, then the set")
    p.add_argument("--poll-seconds", type=float, default=15.0, help=argparse.SUPPRESS)
    p.set_defaults(func=run_stackset)


def template_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--assets-bucket",
        default="",
        help="bucket holding DIR/assets/ (in the stack's region; {region} is replaced)",
    )
    p.add_argument("--assets-prefix", default="", help="key prefix of the assets, ending in /")
    p.add_argument(
        "--participant-role-name", default="", help="existing role to attach the attendee policy"
    )


def _context(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SecmlError(f"-c {pair!r}: expected KEY=VALUE")
        out[key] = value
    return out


def run_package(args: argparse.Namespace) -> int:
    from secml.fleet.package import package_app

    package = package_app(args.out, stack_name=args.stack_name, context=_context(args.context))
    size = sum(a.size for a in package.assets)
    print(
        f"packaged {package.stack_name}: {args.out / package.template} and "
        f"{len(package.assets)} asset(s), {size / 1e6:.1f} MB under {args.out / 'assets'}/"
    )
    print(
        f"upload: aws s3 sync {args.out / 'assets'}/ s3://BUCKET/PREFIX/  "
        "(one bucket per region, or Workshop Studio's assets/)"
    )
    return 0


def _default_region(args: argparse.Namespace) -> str | None:
    return args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")


def _stack_name_from_state(path: Path) -> str | None:
    """The state file's stack name; None only when there is no state file (a corrupt one or one
    of the wrong shape is an error of its own, not "no state file")."""
    from secml.fleet.state import read_state_json

    if not (path.exists() or path.is_symlink()):
        return None
    return read_state_json(path)["stack_name"]


def _check_outputs(args: argparse.Namespace, *inputs: Path | None) -> None:
    """Before any account is touched: the report and the state file must not be an input."""
    from secml.outputs import check_output

    check_output(args.report, [args.state, *inputs], option="--report")
    check_output(args.state, [args.report, *inputs], option="--state")


def _check_parallel(args: argparse.Namespace) -> None:
    if not 1 <= args.parallel <= 200:
        raise SecmlError(f"--parallel must be between 1 and 200, got {args.parallel}")


def _run_accounts(
    args: argparse.Namespace, targets: list[Any], job: Any, state: Any, title: str, **kw: Any
) -> Any:
    from secml.fleet.aws import AssumedRoleSessions
    from secml.fleet.progress import ProgressView
    from secml.fleet.runner import run_fleet

    sessions = AssumedRoleSessions(args.role_name, external_id=args.external_id)
    with ProgressView(title, len(targets)) as view:
        return run_fleet(
            targets,
            job,
            state=state,
            session_factory=sessions,
            parallel=args.parallel,
            show=view,
            **kw,
        )


def _print_summary(verb: str, summary: Any, report: Path | None) -> None:
    counts = ", ".join(f"{n} {s}" for s, n in sorted(summary.counts().items()))
    resumed = f" ({len(summary.skipped)} already done, skipped)" if summary.skipped else ""
    print(f"{verb}: {counts}{resumed} in {summary.seconds:.1f} s")
    if report:
        print(f"report: {report}")


def run_preflight(args: argparse.Namespace) -> int:
    from rich.console import Console

    from secml.fleet.aws import AssumedRoleSessions
    from secml.fleet.preflight import instance_needs, preflight, render_table
    from secml.fleet.roster import read_roster

    _check_parallel(args)
    targets = read_roster(args.roster, default_region=_default_region(args))
    needs = instance_needs(
        args.notebook_instance_type, args.training_instance_type, args.endpoint_instance_type
    )
    sessions = AssumedRoleSessions(args.role_name, external_id=args.external_id)
    results = preflight(targets, sessions, needs, parallel=args.parallel)
    Console().print(render_table(results, f"preflight: {args.roster}"))
    not_ready = sum(1 for r in results if not r.ready)
    print(f"preflight: {len(results) - not_ready} of {len(results)} account(s) ready")
    return 1 if not_ready else 0


def run_provision(args: argparse.Namespace) -> int:
    from secml.fleet.roster import read_roster
    from secml.fleet.runner import write_report
    from secml.fleet.stacks import provision_stack, spec_from_package
    from secml.fleet.state import DEPLOYED, StateFile

    _check_parallel(args)
    _check_outputs(args, args.roster, args.template, args.template / "fleet-package.json")
    targets = read_roster(args.roster, default_region=_default_region(args))
    spec = spec_from_package(
        args.template,
        stack_name=args.stack_name,
        assets_bucket=args.assets_bucket,
        assets_prefix=args.assets_prefix,
        participant_role=args.participant_role_name,
    )
    state = StateFile(args.state, spec.stack_name)
    poll, timeout = args.poll_seconds, args.timeout_minutes * 60

    def is_done(entry: Any) -> bool:
        return (
            not args.force
            and entry is not None
            and entry.status == DEPLOYED
            and entry.fingerprint == spec.fingerprint(entry.region)
        )

    try:
        summary = _run_accounts(
            args,
            targets,
            lambda session, t: provision_stack(session, t, spec, poll=poll, timeout=timeout),
            state,
            f"provision {spec.stack_name}",
            is_done=is_done,
        )
    finally:
        write_report(args.report, targets, state)
    _print_summary("provision", summary, args.report)
    return 1 if any(s.status != DEPLOYED for s in summary.results.values()) else 0


def _targets_from_state_or_roster(args: argparse.Namespace, state: Any) -> list[Any]:
    from secml.fleet.roster import Target, read_roster

    if args.roster:
        return read_roster(args.roster, default_region=_default_region(args))
    targets = [Target(e.account_id, e.region, e.attendee) for e in state.accounts.values()]
    if not targets:
        raise SecmlError(f"{args.state} records no accounts: pass --roster")
    return targets


def _open_state(args: argparse.Namespace) -> Any:
    from secml.fleet.state import StateFile

    stack_name = args.stack_name or _stack_name_from_state(args.state)
    if not stack_name:
        raise SecmlError(f"no state file {args.state}: pass --stack-name (and --roster)")
    return StateFile(args.state, stack_name)


def run_teardown(args: argparse.Namespace) -> int:
    from secml.fleet.runner import write_report
    from secml.fleet.stacks import default_leftover_finder, teardown_stack
    from secml.fleet.state import DELETE_FAILED, DELETED

    _check_parallel(args)
    _check_outputs(args, args.roster)
    state = _open_state(args)
    targets = _targets_from_state_or_roster(args, state)
    finder = default_leftover_finder()
    if finder is None:
        print("note: verify-clean is not available; checking only that each stack is gone")
    poll, timeout = args.poll_seconds, args.timeout_minutes * 60
    try:
        summary = _run_accounts(
            args,
            targets,
            lambda session, t: teardown_stack(
                session, t, state.stack_name, poll=poll, timeout=timeout, find_leftovers=finder
            ),
            state,
            f"teardown {state.stack_name}",
            is_done=lambda e: e is not None and e.status == DELETED,
            failed_status=DELETE_FAILED,
        )
    finally:
        write_report(args.report, targets, state)
    _print_summary("teardown", summary, args.report)
    return 1 if any(s.status != DELETED for s in summary.results.values()) else 0


def run_status(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from secml.fleet.stacks import describe_account

    state = _open_state(args)
    if args.refresh:
        _check_parallel(args)
        targets = _targets_from_state_or_roster(args, state)
        _run_accounts(
            args,
            targets,
            lambda session, t: _keep_fingerprint(
                state, describe_account(session, t, state.stack_name)
            ),
            state,
            f"status {state.stack_name}",
        )
    table = Table(title=f"{state.stack_name}: {args.state}")
    for column in ("account", "region", "attendee", "status", "notebook url / error"):
        table.add_column(column, overflow="fold")
    for entry in state.accounts.values():
        table.add_row(
            entry.account_id,
            entry.region,
            entry.attendee,
            entry.status,
            entry.error or entry.notebook_url,
        )
    Console().print(table)
    return 0


def _keep_fingerprint(state: Any, fresh: Any) -> Any:
    previous = state.get(fresh.key)
    if previous and previous.stack_id == fresh.stack_id:
        fresh.fingerprint = previous.fingerprint
    return fresh


def run_stackset(args: argparse.Namespace) -> int:
    import boto3

    from secml.fleet.aws import client_config
    from secml.fleet.stacks import spec_from_package
    from secml.fleet.stackset import StackSetOptions, delete_stack_set, deploy_stack_set

    split = lambda s: [x.strip() for x in s.split(",") if x.strip()]  # noqa: E731
    region = _default_region(args)
    if not region:
        raise SecmlError("pass --region (the StackSet administrator region) or set AWS_REGION")
    cf = boto3.Session().client("cloudformation", region_name=region, config=client_config())
    opts = StackSetOptions(
        name=args.name or "",
        ous=split(args.ou),
        regions=split(args.regions),
        max_concurrent_percentage=args.max_concurrent_percentage,
        failure_tolerance_percentage=args.failure_tolerance_percentage,
        call_as=args.call_as,
        poll=args.poll_seconds,
    )
    if args.delete:
        opts.name = opts.name or DEFAULT_STACK
        removed = delete_stack_set(cf, opts)
        print(f"deleted StackSet {opts.name} ({removed} instance(s) removed)")
        return 0
    spec = spec_from_package(
        args.template,
        assets_bucket=args.assets_bucket,
        assets_prefix=args.assets_prefix,
        participant_role=args.participant_role_name,
    )
    opts.name = opts.name or spec.stack_name
    action = deploy_stack_set(cf, spec, opts)
    print(f"StackSet {opts.name} {action}: OUs {', '.join(opts.ous)} in {', '.join(opts.regions)}")
    return 0
