"""`python -m secml demo`: the whole workshop offline, end to end, with a report."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the whole workshop offline, end to end, with a report",
        description=(
            "Synthesize the CDK app, start an embedded S3, run the real ingest Lambda handlers, "
            "train the local IP Insights engine and write a report on how it ranks the "
            "GuardDuty findings."
        ),
    )
    parser.add_argument("--out", type=Path, default=Path("demo-output"), help="report folder")
    parser.add_argument(
        "--preset",
        choices=("workshop", "large"),
        default="workshop",
        help="workshop: the committed data/workshop; large: generated once into a cache folder",
    )
    parser.add_argument("--dataset", type=Path, help="use this dataset folder instead of a preset")
    parser.add_argument(
        "--backend",
        choices=("local", "aws"),
        default="local",
        help="local: embedded S3, in-process Lambdas; aws: a deployed stack (--stack)",
    )
    parser.add_argument("--stack", help="deployed stack name (with --backend aws)")
    parser.add_argument(
        "--port", type=int, default=0, help="embedded S3 port on 127.0.0.1 (default: any free)"
    )
    parser.add_argument(
        "--epochs", type=int, default=None, help="IP Insights epochs (default: the workshop's, 5)"
    )
    parser.add_argument("--vector-dim", type=int, default=128, help="IP Insights vector_dim")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threshold-percentile",
        type=float,
        default=1.0,
        help="flag scores below this percentile of the training scores (default 1)",
    )
    parser.add_argument(
        "--train-on-scored-pairs",
        action="store_true",
        help="train on every CloudTrail tuple, the pairs under investigation included "
        "(the original workshop's way; it teaches the model the attackers' addresses)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no training progress bar")
    parser.add_argument("--open", action="store_true", help="open the report in a browser")
    parser.set_defaults(func=run)


def check_arguments(args: argparse.Namespace) -> None:
    """What can be wrong with the arguments, found before minutes of synth, ingest and training."""
    import math

    from secml.errors import SecmlError
    from secml.outputs import check_output

    # The report files go into --out next to whatever is there (a dataset included): only a
    # file in its way, or a file as one of its parents, is wrong.
    check_output(args.out, option="--out", kind="folder")
    if not math.isfinite(args.threshold_percentile) or not 0 <= args.threshold_percentile <= 100:
        raise SecmlError(
            f"--threshold-percentile must be within 0..100, got {args.threshold_percentile}"
        )
    if not 4 <= args.vector_dim <= 4096:
        raise SecmlError(
            f"--vector-dim must be within 4..4096 (as in SageMaker), got {args.vector_dim}"
        )


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from secml.demo import terminal
    from secml.demo.pipeline import DemoOptions
    from secml.errors import SecmlError

    if not 0 <= args.port <= 65535:
        raise SecmlError(f"--port must be within 0..65535, got {args.port}")
    if args.epochs is not None and args.epochs < 1:
        raise SecmlError(f"--epochs must be at least 1, got {args.epochs}")
    if args.backend == "aws" and not args.stack:
        raise SecmlError("--backend aws needs --stack NAME (the deployed stack)")
    check_arguments(args)
    options = DemoOptions(
        out=args.out,
        preset=args.preset,
        dataset=args.dataset,
        backend=args.backend,
        stack=args.stack,
        port=args.port,
        epochs=args.epochs,
        train_on_scored_pairs=args.train_on_scored_pairs,
        vector_dim=args.vector_dim,
        threshold_percentile=args.threshold_percentile,
        seed=args.seed,
        progress=not args.no_progress,
    )
    console = Console(stderr=False, highlight=False)
    result = terminal.run_with_console(options, console)
    if args.open:
        import webbrowser

        webbrowser.open(result.report_path.resolve().as_uri())
    return 0  # a ranking that does not hold is a result to read in the report, not a failure
