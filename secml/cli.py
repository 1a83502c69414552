"""`python -m secml ...`: one sub-command per module, imported lazily.

Each command module exposes ``register(subparsers)`` which adds its parser and sets
``func=run``. Modules keep heavy imports (torch, boto3, aws_cdk) inside ``run`` so that
``--help`` and unrelated commands start fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from secml import __version__
from secml.errors import SecmlError

# name -> module that registers it. The order is the order shown in --help.
COMMAND_MODULES: dict[str, str] = {
    "generate": "secml.datagen.cli",
    "tuples": "secml.tuples",
    "train": "secml.ipinsights.cli",
    "score": "secml.ipinsights.cli",
    "demo": "secml.demo.cli",
    "export-model": "secml.detect",
    "detect": "secml.detect",
    "verify-clean": "secml.verify_clean",
    "fleet": "secml.fleet.cli",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m secml",
        description="The GuardDuty + IP Insights workshop, offline and for facilitators.",
    )
    parser.add_argument("--version", action="version", version=f"secml {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    registered: set[str] = set()
    for module_name in dict.fromkeys(COMMAND_MODULES.values()):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # that part of the project is not built yet
            raise
        module.register(subparsers)
        registered.add(module_name)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SecmlError as exc:
        print(f"secml {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"secml {args.command}: interrupted", file=sys.stderr)
        return 130
