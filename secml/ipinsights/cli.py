"""`python -m secml train` and `python -m secml score`: the local IP Insights engine.

torch is imported inside ``run_train`` so ``python -m secml --help`` stays fast; ``score``
does not import it at all (``scorer.py``).
"""

from __future__ import annotations

import argparse
import sys
import time


def register(subparsers) -> None:
    train = subparsers.add_parser(
        "train",
        help="train the local IP Insights engine on an entity,ip CSV",
        description="Train the local IP Insights engine (SageMaker hyperparameter names).",
    )
    train.add_argument("--train", required=True, metavar="FILE", help="headerless entity,ip CSV")
    train.add_argument(
        "--validation", metavar="FILE", help="entity,ip CSV for validation:discriminator_auc"
    )
    train.add_argument("--model-dir", required=True, metavar="DIR", help="where to save the model")
    train.add_argument(
        "--hp",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a SageMaker IP Insights hyperparameter, e.g. --hp vector_dim=128 (repeatable); "
        "num_entity_vectors defaults to 2x the distinct entities, vector_dim to 128",
    )
    train.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    train.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto")
    train.add_argument(
        "--skip-invalid", action="store_true", help="skip and count invalid rows instead of failing"
    )
    train.set_defaults(func=run_train)

    score = subparsers.add_parser(
        "score",
        help="score entity,ip pairs with a trained model (JSON Lines out)",
        description='Score entity,ip CSV rows: one {"dot_product": x} JSON line per row.',
    )
    score.add_argument("--model-dir", required=True, metavar="DIR")
    score.add_argument(
        "--verbose",
        action="store_true",
        help="add entity_embedding, ip_embedding and known_entity to each line",
    )
    score.add_argument(
        "--skip-invalid",
        action="store_true",
        help="skip invalid rows (no output line for them) and report the count on stderr",
    )
    score.add_argument(
        "--device",
        choices=("cpu", "cuda", "auto"),
        default="cpu",
        help="cpu and auto score with numpy (no torch import); cuda uses torch on a GPU",
    )
    score.add_argument("file", nargs="?", metavar="FILE", help="entity,ip CSV (default: stdin)")
    score.set_defaults(func=run_score)


def _setup_logging() -> None:
    import logging

    class CurrentStderr(logging.StreamHandler):
        """Writes to sys.stderr as it is now, not as it was at setup: a closed capture (one
        test's, a notebook cell's) must not break the log of the next command in-process."""

        @property
        def stream(self):
            return sys.stderr

        @stream.setter
        def stream(self, value) -> None:
            pass

    logger = logging.getLogger("secml.ipinsights")
    if not logger.handlers:
        handler = CurrentStderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def run_train(args: argparse.Namespace) -> int:
    from secml.errors import SecmlError
    from secml.ipinsights.data import load_pairs
    from secml.ipinsights.hyperparameters import (
        check_training_memory,
        format_bytes,
        parse_hp_arguments,
        training_memory_bytes,
        validate_hyperparameters,
    )
    from secml.ipinsights.model import check_model_dir
    from secml.outputs import check_output

    _setup_logging()
    # Everything that can be checked without the data is checked before reading it.
    out = check_output(
        args.model_dir, [args.train, args.validation], option="--model-dir", kind="folder"
    )
    check_model_dir(out)
    hyperparameters: dict = parse_hp_arguments(args.hp)
    # num_entity_vectors defaults to a count from the data: 1 stands in for it here, so the
    # memory check is a lower bound until the data is read (checked again below).
    checked = validate_hyperparameters(
        {"num_entity_vectors": 1, "vector_dim": 128, **hyperparameters}
    )
    check_training_memory(checked)
    started = time.perf_counter()
    pairs = load_pairs(args.train, skip_invalid=args.skip_invalid)
    if pairs.skipped:
        print(
            f"train: skipped {pairs.skipped} invalid rows (first: {pairs.problems[0]})",
            file=sys.stderr,
        )
    validation = None
    if args.validation:
        validation = load_pairs(args.validation, skip_invalid=args.skip_invalid)
        if validation.skipped:
            print(f"validation: skipped {validation.skipped} invalid rows", file=sys.stderr)
    if "num_entity_vectors" not in hyperparameters:
        import numpy as np

        hyperparameters["num_entity_vectors"] = max(1, 2 * len(np.unique(pairs.entities)))
    hyperparameters.setdefault("vector_dim", 128)

    from secml.ipinsights.model import IPInsights

    model = IPInsights(seed=args.seed, device=args.device, **hyperparameters)
    check_training_memory(model.hyperparameters)
    try:
        history = model.fit(pairs, validation, progress=sys.stderr.isatty())
    except (MemoryError, RuntimeError) as exc:
        text = str(exc).lower()
        if not isinstance(exc, MemoryError) and "alloc" not in text and "out of memory" not in text:
            raise
        need = training_memory_bytes(model.hyperparameters)
        raise SecmlError(
            f"out of memory while training: the tables alone need about {format_bytes(need)} "
            "(weights and Adam state); lower num_entity_vectors or vector_dim"
        ) from None
    model.save(out)
    last = history[-1]
    extra = ""
    if "validation:discriminator_auc" in last:
        extra = f", validation:discriminator_auc={last['validation:discriminator_auc']:.4f}"
    print(
        f"trained on {len(pairs)} pairs ({pairs.skipped} skipped), {len(history)} epochs, "
        f"loss={last['loss']:.4f}{extra}, {time.perf_counter() - started:.1f} s; model in {out}",
        file=sys.stderr,
    )
    return 0


def run_score(args: argparse.Namespace) -> int:
    import os

    if "numpy" not in sys.modules:
        # numpy's matrix products here are small (distinct entities x vector_dim^2 per block):
        # OpenBLAS's worker threads only spin between them, 0.9 s of CPU of a 3.1 s 2M-row run
        # on a shared 2-core machine (docs/ipinsights-engine.md). Read once, at numpy's import.
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from secml.ipinsights.scorer import load_for_scoring
    from secml.ipinsights.scoring import open_csv, score_csv

    # numpy only (no torch import) unless --device cuda or a model saved before weights.npz
    model = load_for_scoring(args.model_dir, device=args.device)
    from_stdin = not args.file or args.file == "-"
    source = sys.stdin.buffer if from_stdin else open_csv(args.file)
    name = "stdin" if from_stdin else str(args.file)
    try:
        # streamed in blocks; nothing reaches stdout unless the whole input is good
        summary = score_csv(
            model,
            source,
            name,
            sys.stdout.buffer,
            skip_invalid=args.skip_invalid,
            verbose=args.verbose,
        )
        sys.stdout.flush()
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (| head): not an error worth a traceback
        return 0
    finally:
        if not from_stdin:
            source.close()
    if summary.skipped:
        print(
            f"score: skipped {summary.skipped} invalid rows ({summary.first_problem})",
            file=sys.stderr,
        )
    return 0
