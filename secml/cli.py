"""`python -m secml ...`: one sub-command per module, imported lazily.

Each command module exposes ``register(subparsers)`` which adds its parser and sets
``func=run``. Modules keep heavy imports (torch, boto3, aws_cdk) inside ``run`` so that
``--help`` and unrelated commands start fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
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


# jsii (under aws_cdk, used by `fleet package` and `demo`) prints a full-screen banner when the
# Node.js major version is end-of-life or deprecated, once per process it starts, unless these
# list that major version (comma-separated; bin__jsii-runtime.js, checkNode). The banner says
# nothing a facilitator can act on during a workshop; set before any jsii process starts, and
# inherited by the subprocesses the commands start.
JSII_SILENCED = (
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION",
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION",
)
NODE_MAJORS = ",".join(str(v) for v in range(10, 41))


def silence_jsii_node_banner(environ: dict[str, str] | os._Environ = os.environ) -> None:
    for name in JSII_SILENCED:
        environ.setdefault(name, NODE_MAJORS)


def main(argv: list[str] | None = None) -> int:
    silence_jsii_node_banner()
    parser = build_parser()
    args = parser.parse_args(argv)
    name = " ".join(filter(None, (args.command, getattr(args, "fleet_command", None))))
    try:
        return int(args.func(args) or 0)
    except SecmlError as exc:
        print(f"secml {name}: error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"secml {name}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # disk full, permission denied, ... while writing an output
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"secml {name}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: still one line; SECML_DEBUG=1 shows the traceback
        if os.environ.get("SECML_DEBUG"):
            raise
        detail = _one_line(f"{type(exc).__name__}: {exc}")
        print(
            f"secml {name}: internal error: {detail} (SECML_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 70


def _one_line(text: str) -> str:
    return " ".join(text.split("\n")).strip()
