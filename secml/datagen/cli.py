"""`python -m secml generate --preset workshop|large --out DIR [--seed N]`."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from secml.errors import SecmlError
from secml.outputs import atomic_directory, check_output


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "generate",
        help="write the synthetic workshop dataset (CloudTrail, GuardDuty findings, truth.csv)",
        description="Deterministic: the same preset and seed give byte-identical files.",
    )
    p.add_argument("--preset", choices=["workshop", "large"], default="workshop")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument(
        "--seed", type=int, default=None, help="random seed (default: the committed one)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from secml.datagen.generate import DEFAULT_SEED, PRESETS, generate

    out: Path = check_output(args.out, option="--out", kind="folder")
    if out.is_dir() and any(out.iterdir()):
        raise SecmlError(f"--out {out} is not empty (generation never mixes two datasets)")
    seed = DEFAULT_SEED if args.seed is None else args.seed
    if seed < 0:
        raise SecmlError("--seed must be >= 0")
    started = time.perf_counter()
    # Written beside --out and renamed into place when complete: an interrupted run leaves no
    # half dataset that a later demo or upload would take for a whole one.
    with atomic_directory(out) as staging:
        s = generate(PRESETS[args.preset], staging, seed)
    took = time.perf_counter() - started
    print(
        f"wrote {s.records:,} CloudTrail records in {s.files:,} files "
        f"({s.bytes_written / 1e6:.1f} MB gzipped) and {s.findings} GuardDuty findings "
        f"to {out} in {took:.1f} s"
    )
    return 0
