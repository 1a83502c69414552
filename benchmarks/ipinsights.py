"""Local IP Insights engine: quality (AUC against a heuristic) and speed (records/s).

    .venv/bin/python benchmarks/ipinsights.py            # full: ~10-20 min on 2 busy cores
    .venv/bin/python benchmarks/ipinsights.py --quick    # ~2-4 min
    .venv/bin/python benchmarks/ipinsights.py --only speed|quality|memory|scoring
    .venv/bin/python benchmarks/ipinsights.py --only scoring --baseline /tmp/base  # A/B
    .venv/bin/python benchmarks/ipinsights.py --only quality --data-seed 1   # other data sets

Speed is measured in short windows (a few dozen mini-batches), the engine and the baselines
alternating, and reported as the best window of each (the least disturbed by other processes
on a shared machine) and the median. Ratios compare figures measured in the same run.

Records are counted as SageMaker counts them: real + negative pairs.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from secml.ipinsights import IPInsights  # noqa: E402
from secml.ipinsights.data import load_pairs  # noqa: E402
from secml.ipinsights.metrics import roc_auc  # noqa: E402
from secml.ipinsights.synthetic import (  # noqa: E402
    adjacent_range_logins,
    nearest_seen_heuristic,
    organisation_logins,
    tutorial_logins,
)
from secml.ipinsights.trainer import TrainData  # noqa: E402

# ----------------------------------------------------------------------------------- quality


# the prefix encoder without its coarse-prefix training (prefix dropout, slower /24 and /32 rows)
PLAIN = dict(prefix_dropout=(), prefix_lr_scale=(), entity_smoothing=0)
NO_SMOOTHING = dict(entity_smoothing=0)


def quality_sets(quick: bool, data_seed: int = 0) -> list[tuple[str, object]]:
    """Several generator families and seeds. The last set is held out: a different size and
    seed of the organisation family, never used to choose a setting; compare it last."""
    scale = dict(num_users=800) if quick else {}
    org_scale = dict(num_orgs=40) if quick else {}
    seeds = [data_seed] if quick else [data_seed, data_seed + 1, data_seed + 2]
    sets = []
    for seed in seeds:
        sets.append((f"tutorial-style, seed {seed}", tutorial_logins(**scale, seed=seed)))
    sets.append(("organisations, 4 offices", organisation_logins(**org_scale, seed=data_seed)))
    for seed in seeds:
        data = organisation_logins(offices_per_org=8, **org_scale, seed=seed)
        sets.append((f"organisations, 8 offices, seed {seed}", data))
    for seed in seeds[:2]:
        data = adjacent_range_logins(**org_scale, seed=seed)
        sets.append((f"adjacent ranges, seed {seed}", data))
    held_out = organisation_logins(num_orgs=50, offices_per_org=8, seed=4242 + data_seed)
    sets.append(("HELD OUT: 50 orgs x 20, 8 offices", held_out))
    return sets


def quality(quick: bool, data_seed: int = 0, all_designs: bool = True) -> None:
    sets = quality_sets(quick, data_seed)
    # (column, IP encoder, num_ip_encoder_layers, engine settings)
    designs = [("engine", "prefix", 1, {}), ("no smooth", "prefix", 1, NO_SMOOTHING)]
    if all_designs and not quick:
        designs += [
            ("plain/1L", "prefix", 1, PLAIN),
            ("hashed/1L", "hashed", 1, {}),
            ("octet/2L", "octet", 2, {}),
        ]
    print("\n## Quality: AUC of held-out logins vs the same users at random networks")
    print("settings: vector_dim=128, random_negative_sampling_rate=5, shuffled 1, epochs=5,")
    print("          lr=0.01, mini_batch_size=1000, num_entity_vectors=2x users, seed=0\n")
    header = f"{'data set':36s} {'train':>7s} {'ceiling':>8s} {'heuristic':>9s}"
    header += "".join(f" {column:>10s}" for column, *_ in designs)
    print(header)
    no_travel: list[str] = []
    for name, data in sets:
        row = f"{name:36s} {len(data.train_ips):7d} {travel_ceiling(data):8.4f}"
        heuristic = nearest_seen_heuristic(data)
        row += f" {roc_auc(heuristic, data.test_labels):9.4f}"
        if data.test_travel is not None:
            no_travel.append(f"{name}: heuristic {non_travel_auc(heuristic, data):.4f}")
        users = len(np.unique(data.train_entities))
        for column, enc, layers, settings in designs:
            model = IPInsights(
                num_entity_vectors=2 * users,
                vector_dim=128,
                epochs=5,
                random_negative_sampling_rate=5,
                shuffled_negative_sampling_rate=1,
                mini_batch_size=1000,
                learning_rate=0.01,
                num_ip_encoder_layers=layers,
                ip_encoder=enc,
                seed=0,
                **settings,
            )
            model.fit(data.train_frame(), progress=False)
            scores = model.score(data.test_entities, data.to_text(data.test_ips))
            row += f" {roc_auc(scores, data.test_labels):10.4f}"
            if data.test_travel is not None:
                no_travel[-1] += f", {column} {non_travel_auc(scores, data):.4f}"
        print(row, flush=True)
    print("(engine: the defaults; no smooth: entity_smoothing=0, the engine before it; plain:")
    print(" also without prefix dropout and slower /24, /32 rows; ceiling: a scorer perfect")
    print(" except on travel logins, which are drawn as the negatives are and so tie with them)")
    for line in no_travel:
        print(f"AUC without the held-out travel logins, {line}")


def travel_ceiling(data) -> float:
    """AUC of a scorer perfect on every real login but travel (travel ties with negatives)."""
    if data.test_travel is None:
        return 1.0
    real = data.test_labels.astype(bool)
    return roc_auc((real & ~data.test_travel).astype(np.float64), real)


def non_travel_auc(scores, data) -> float:
    keep = ~data.test_travel
    return roc_auc(scores[keep], data.test_labels[keep])


# ------------------------------------------------------------------------------------- speed


class NaiveIPInsights(nn.Module):
    """Plain PyTorch: nn.Embedding tables, every record through the full IP encoder."""

    def __init__(self, entities: int, ip_rows: int, dim: int, layers: int, pad: int, sparse):
        super().__init__()
        self.entity = nn.Embedding(entities, dim, sparse=sparse)
        self.ip = nn.EmbeddingBag(ip_rows, dim, mode="sum", padding_idx=pad, sparse=sparse)
        self.layers = nn.ModuleList(nn.Linear(dim, dim) for _ in range(layers))

    def forward(self, entity_rows, slots):
        h = self.ip(slots)
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                h = torch.relu(h)
        return (self.entity(entity_rows) * h).sum(1)


class NaiveTrainer:
    """The baseline loop: builds all (1+R+S)*B records explicitly and encodes each one."""

    def __init__(self, engine: IPInsights, sparse: bool):
        hp = engine.hyperparameters
        self.hp = hp
        self.indexer = engine.indexer
        self.net = NaiveIPInsights(
            hp["num_entity_vectors"],
            self.indexer.num_rows,
            hp["vector_dim"],
            hp["num_ip_encoder_layers"],
            self.indexer.padding_row,
            sparse,
        )
        lr, wd = hp["learning_rate"], hp["weight_decay"]
        if sparse:
            emb = list(self.net.entity.parameters()) + list(self.net.ip.parameters())
            self.opts = [torch.optim.SparseAdam(emb, lr=lr)]
            dense = list(self.net.layers.parameters())
            if dense:
                self.opts.append(torch.optim.Adam(dense, lr=lr, weight_decay=wd))
        else:
            self.opts = [torch.optim.Adam(self.net.parameters(), lr=lr, weight_decay=wd)]
        self.rng = np.random.default_rng(0)

    def run(self, data: TrainData, start: int, batches: int) -> int:
        from secml.ipinsights.addresses import random_addresses

        b, r, s = (
            self.hp["mini_batch_size"],
            self.hp["random_negative_sampling_rate"],
            self.hp["shuffled_negative_sampling_rate"],
        )
        records = 0
        for k in range(batches):
            lo = (start + k * b) % max(1, len(data.entity_rows) - b)
            ent = data.entity_rows[lo : lo + b]
            slots = data.ip_slots[lo : lo + b]
            neg = self.indexer.rows(random_addresses(self.rng, np.zeros(b * r, dtype=bool)))
            shuffled = [slots[torch.randperm(b)] for _ in range(s)]
            all_ent = torch.cat([ent, ent.repeat_interleave(r)] + [ent] * s)
            all_slots = torch.cat([slots, torch.from_numpy(neg)] + shuffled)
            labels = torch.zeros(len(all_ent))
            labels[:b] = 1
            for opt in self.opts:
                opt.zero_grad()
            loss = F.binary_cross_entropy_with_logits(self.net(all_ent, all_slots), labels)
            loss.backward()
            for opt in self.opts:
                opt.step()
            records += len(all_ent)
        return records


def speed_data(quick: bool):
    data = tutorial_logins(num_users=8000 if quick else 20000, num_companies=4000, num_isps=300)
    return load_pairs(data.train_frame()), len(np.unique(data.train_entities))


def engine_for(pairs, users, dim, batch, layers=1):
    model = IPInsights(
        num_entity_vectors=2 * users,
        vector_dim=dim,
        epochs=1,
        random_negative_sampling_rate=5,
        shuffled_negative_sampling_rate=1,
        mini_batch_size=batch,
        learning_rate=0.01,
        num_ip_encoder_layers=layers,
        seed=0,
    )
    trainer, data = model._prepare(pairs)
    return model, trainer, data


def engine_window(trainer, data: TrainData, start: int, rows: int) -> tuple[int, float]:
    n = len(data.entity_rows)
    lo = start % max(1, n - rows)
    part = TrainData(
        data.entity_rows[lo : lo + rows], data.ip_slots[lo : lo + rows], data.is_v6[lo : lo + rows]
    )
    t = time.perf_counter()
    metrics = trainer.epoch(part)
    return metrics["records"], time.perf_counter() - t


def state_megabytes(model: IPInsights) -> float:
    params = sum(p.numel() for p in model.net.parameters())
    return params * 4 * 3 / 2**20  # weights + Adam m and v, float32


def speed(quick: bool) -> None:
    pairs, users = speed_data(quick)
    windows = 3 if quick else 5
    print(f"\n## Speed: records/s (real + negative pairs), {len(pairs)} training pairs,")
    print(f"   {users} entities, random 5, shuffled 1, 1 FC layer, torch threads = ")
    print(f"   {torch.get_num_threads()}; best (median) of {windows} alternating windows\n")

    # engine vs baselines at the reference point
    model, trainer, data = engine_for(pairs, users, 128, 1000)
    naive = NaiveTrainer(model, sparse=False)
    plain = NaiveTrainer(model, sparse=True)
    rates: dict[str, list[float]] = {"engine": [], "plain (sparse, SparseAdam)": [], "naive": []}
    batches = 30
    # warm-up, not counted: first touches of the Adam state pages, lookup tables, allocator
    engine_window(trainer, data, 0, 10_000)
    plain.run(data, 0, 3)
    naive.run(data, 0, 1)
    for w in range(windows):
        recs, sec = engine_window(trainer, data, w * 30_000, batches * 1000)
        rates["engine"].append(recs / sec)
        t = time.perf_counter()
        recs = plain.run(data, w * 30_000, batches // 3)
        rates["plain (sparse, SparseAdam)"].append(recs / (time.perf_counter() - t))
        t = time.perf_counter()
        recs = naive.run(data, w * 30_000, 3 if quick else 5)
        rates["naive"].append(recs / (time.perf_counter() - t))
    best = {k: max(v) for k, v in rates.items()}
    title = "implementation (dim 128, batch 1000)"
    print(f"{title:40s} {'best rec/s':>11s} {'median':>10s} {'ratio':>7s}")
    for k, v in rates.items():
        print(
            f"{k:40s} {best[k]:11,.0f} {statistics.median(v):10,.0f} "
            f"{best['engine'] / best[k]:6.1f}x"
        )
    print(
        f"(ratio = engine best / that implementation's best; state {state_megabytes(model):.0f} MB)"
    )

    # the curve
    dims = [64, 128, 256] if quick else [32, 64, 128, 256, 512]
    sizes = [1000, 10000] if quick else [100, 1000, 10000]
    print(
        f"\n{'vector_dim':>10s} {'batch':>6s} {'best rec/s':>11s} {'median':>10s} {'state MB':>9s}"
    )
    points = [(d, 1000) for d in dims] + [(128, b) for b in sizes if b != 1000]
    for dim, batch in points:
        model, trainer, data = engine_for(pairs, users, dim, batch)
        rows = max(batch * 20, 20_000)
        engine_window(trainer, data, 0, rows)  # warm-up
        vals = []
        for w in range(windows):
            recs, sec = engine_window(trainer, data, w * rows, rows)
            vals.append(recs / sec)
        print(
            f"{dim:10d} {batch:6d} {max(vals):11,.0f} {statistics.median(vals):10,.0f} "
            f"{state_megabytes(model):9.0f}",
            flush=True,
        )
    if not quick:
        print(f"\n{'torch threads':>13s} {'best rec/s':>11s}   (dim 128, batch 1000)")
        model, trainer, data = engine_for(pairs, users, 128, 1000)
        before = torch.get_num_threads()
        engine_window(trainer, data, 0, 30_000)  # warm-up
        for threads in (1, 2):
            torch.set_num_threads(threads)
            vals = [engine_window(trainer, data, w * 30_000, 30_000) for w in range(windows)]
            print(f"{threads:13d} {max(r / s for r, s in vals):11,.0f}")
        torch.set_num_threads(before)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak resident memory of this benchmark process: {peak:,.0f} MB")


# ------------------------------------------------------------------------------- scoring

IN_PROCESS = """
import sys, time
sys.path.insert(0, sys.argv[1])
import pandas as pd
from secml.ipinsights.model import IPInsights
frame = pd.read_csv(sys.argv[3], header=None, dtype=str, keep_default_na=False)
entities, ips = frame[0].tolist(), frame[1].tolist()
model = IPInsights.load(sys.argv[2])
model.score(entities[:1000], ips[:1000])
start = time.perf_counter()
model.score(entities, ips)
print(len(entities) / (time.perf_counter() - start))
"""
# the same with the numpy scorer `secml score` uses (trees that have it)
IN_PROCESS_NUMPY = IN_PROCESS.replace(
    "from secml.ipinsights.model import IPInsights", "from secml.ipinsights.scorer import Scorer"
).replace("IPInsights.load(", "Scorer.load(")


def scoring(quick: bool, baseline: str | None) -> None:
    """`secml train` and `secml score` by wall clock, and model.score in-process, on a
    tutorial-style set; each tree (this one, and ``--baseline`` if given) in turn, twice."""
    import subprocess
    import tempfile

    rows = 500_000 if quick else 2_000_000
    data = tutorial_logins(num_users=6000, num_companies=3000, num_isps=300)
    trees = {"this tree": str(Path(__file__).resolve().parents[1])}
    if baseline:
        trees["baseline"] = str(Path(baseline).resolve())
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        train_csv, score_csv, model_dir = f"{tmp}/train.csv", f"{tmp}/score.csv", f"{tmp}/model"
        data.train_frame().head(250_000).to_csv(train_csv, header=False, index=False)
        test = data.test_frame()
        pick = np.random.default_rng(0).integers(0, len(test), rows)
        test.iloc[pick].to_csv(score_csv, header=False, index=False)
        hp = "epochs=1" if quick else "epochs=5"
        train_cmd = [python, "-m", "secml", "train", "--train", train_csv, "--model-dir"]
        train_cmd += [model_dir, "--device", "cpu", "--hp", hp, "--hp", "mini_batch_size=1000"]
        train_cmd += ["--hp", "random_negative_sampling_rate=5", "--hp", "learning_rate=0.01"]
        records = 250_000 * 7 * (1 if quick else 5)
        print(f"\n## Train and score by wall clock ({torch.get_num_threads()} torch threads)\n")
        results: dict[str, dict[str, list[float]]] = {t: {} for t in trees}
        for _ in range(2):
            for tree, root in trees.items():
                t = time.perf_counter()
                subprocess.run(train_cmd, cwd=root, check=True, capture_output=True)
                results[tree].setdefault("train rec/s", []).append(
                    records / (time.perf_counter() - t)
                )
                t = time.perf_counter()
                with open(os.devnull, "wb") as sink:
                    cmd = [python, "-m", "secml", "score", "--model-dir", model_dir, score_csv]
                    subprocess.run(cmd, cwd=root, check=True, stdout=sink)
                results[tree].setdefault("score rows/s", []).append(
                    rows / (time.perf_counter() - t)
                )
                rate = subprocess.run(
                    [python, "-c", IN_PROCESS, root, model_dir, score_csv],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                results[tree].setdefault("in-process pairs/s", []).append(float(rate))
                if Path(root, "secml/ipinsights/scorer.py").exists():
                    rate = subprocess.run(
                        [python, "-c", IN_PROCESS_NUMPY, root, model_dir, score_csv],
                        check=True,
                        capture_output=True,
                        text=True,
                    ).stdout
                    results[tree].setdefault("in-process numpy pairs/s", []).append(float(rate))
    print(f"{'tree':12s} {'measure':20s} {'best':>11s} {'worst':>11s}")
    for tree, measures in results.items():
        for name, values in measures.items():
            print(f"{tree:12s} {name:20s} {max(values):11,.0f} {min(values):11,.0f}")
    print(f"(train: 250,000 pairs, {hp}, random 5, shuffled 1, batch 1000, wall clock of the")
    print(f" command; score: {rows:,} rows, CSV in, JSON lines out, wall clock of the command;")
    print(" in-process: IPInsights.score(list, list) on the same rows, model loaded; numpy:")
    print(" scorer.Scorer.score, the forward pass `secml score` runs without torch)")


# ---------------------------------------------------------------------------- bad input


def junk_memory() -> None:
    """Peak memory of parsing 3,000 distinct addresses, alone and beside one 20 KB junk value."""
    import tracemalloc

    from secml.ipinsights.addresses import parse_addresses

    texts = [f"10.{i // 256 % 256}.{i % 256}.1" for i in range(3000)]
    parse_addresses(texts[:10])  # imports and first-call set-up are not what is measured
    print("\n## Parsing memory: 3,000 distinct addresses (tracemalloc peak)\n")
    for name, values in (("clean", texts), ("plus one 20 KB junk value", [*texts, "9" * 20_000])):
        tracemalloc.start()
        parse_addresses(values)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"{name:28s} {peak / 2**20:8.2f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data, fewer points")
    parser.add_argument("--only", choices=("speed", "quality", "memory", "scoring"))
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="another checkout (e.g. git worktree add /tmp/base <commit>) to time beside this "
        "one in --only scoring",
    )
    parser.add_argument(
        "--data-seed", type=int, default=0, help="seed of the synthetic quality sets (default 0)"
    )
    parser.add_argument(
        "--engine-only",
        action="store_true",
        help="quality: only the engine with and without entity smoothing (no encoder columns)",
    )
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, quick={args.quick}")
    if args.only in (None, "memory"):
        junk_memory()
    if args.only in (None, "speed"):
        speed(args.quick)
    if args.only in (None, "scoring"):
        scoring(args.quick, args.baseline)
    if args.only in (None, "quality"):
        quality(args.quick, args.data_seed, all_designs=not args.engine_only)


if __name__ == "__main__":
    main()
