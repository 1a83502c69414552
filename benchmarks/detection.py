"""Detection scoring: artifact size, cold start and per-finding latency, in-process.

    .venv/bin/python benchmarks/detection.py                       # workshop + large subset
    .venv/bin/python benchmarks/detection.py --presets workshop
    .venv/bin/python benchmarks/detection.py --large-days 7 --large-teams 40 --large-epochs 1

For each dataset: train as `secml detect` does (the workshop's hyperparameters; the pairs
under investigation left out), export, then

- cold: a fresh Python process imports the handler module and scores the dataset's first
  scoreable finding with the model read from bytes (what a Lambda cold start adds to the
  runtime's own start: imports, unzip + array load, one score); median of --cold-runs;
- warm: per-finding latency of `score_finding` (tuples_from_finding, score every pair,
  explain, build the alert) with the model loaded, median and p95 over --warm-rounds passes
  through the dataset's findings.

`large`: the full preset (14 days, 220 teams, ~10M records) is too slow to train on the shared
2-core machine, so by default a subset is generated: the large preset's settings with
--large-days days and --large-teams teams (same generator, same seed), trained for
--large-epochs epochs. Epochs change the scores, not the artifact's size or the latency.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lambda_src.detection_scoring import index  # noqa: E402
from lambda_src.detection_scoring.compact_model import CompactModel  # noqa: E402
from secml import detect  # noqa: E402

COLD = """
import sys, time, json
t0 = time.perf_counter()
sys.path.insert(0, {root!r})
from lambda_src.detection_scoring import index
from lambda_src.detection_scoring.compact_model import CompactModel
t1 = time.perf_counter()
data = open({model!r}, "rb").read()
model = CompactModel.from_bytes(data)
t2 = time.perf_counter()
finding = json.load(open({finding!r}))
index.score_finding(finding, model)
t3 = time.perf_counter()
print(json.dumps({{"imports": t1 - t0, "load": t2 - t1, "first_score": t3 - t2, "total": t3 - t0}}))
"""


def large_subset(days: int, teams: int, out: Path) -> Path:
    from secml.datagen.generate import DEFAULT_SEED, PRESETS, Preset, generate

    preset = Preset(
        f"large-{days}d-{teams}t",
        days=days,
        teams=teams,
        file_minutes=PRESETS["large"].file_minutes,
        compresslevel=PRESETS["large"].compresslevel,
    )
    generate(preset, out, seed=DEFAULT_SEED)
    return out


def measure(name: str, dataset: Path, epochs: int | None, cold_runs: int, warm_rounds: int):
    started = time.perf_counter()
    artifact = detect.train_artifact(dataset, epochs=epochs)
    train_s = time.perf_counter() - started
    model = CompactModel.from_bytes(artifact)
    findings = [
        e["detail"] for e in detect.read_events(sorted((dataset / "guardduty").glob("*.json")))
    ]
    scoreable = [f for f in findings if index.score_finding(f, model)["pairs"]]
    with tempfile.TemporaryDirectory() as tmp:
        model_file = Path(tmp) / "model.zip"
        model_file.write_bytes(artifact)
        finding_file = Path(tmp) / "finding.json"
        finding_file.write_text(json.dumps(scoreable[0]))
        colds = []
        for _ in range(cold_runs):
            code = COLD.format(root=str(ROOT), model=str(model_file), finding=str(finding_file))
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            colds.append(json.loads(out.stdout))
    warm = []
    for _ in range(warm_rounds):
        for finding in scoreable:
            t = time.perf_counter()
            index.score_finding(finding, model)
            warm.append(time.perf_counter() - t)
    warm.sort()

    def med(key):
        return statistics.median(c[key] for c in colds) * 1000

    print(
        f"{name}: {model.meta['training_pairs']:,} training pairs, {model.meta['entities']} "
        f"principals, {model.meta['encoder']['rows']:,} IP table rows, dim {model.dim}; "
        f"trained+exported in {train_s:.0f} s"
    )
    print(f"  artifact: {len(artifact):,} bytes ({len(artifact) / 1e6:.2f} MB)")
    print(
        f"  cold (median of {cold_runs} fresh processes): imports {med('imports'):.0f} ms, "
        f"model load {med('load'):.1f} ms, first finding {med('first_score'):.1f} ms, "
        f"total {med('total'):.0f} ms"
    )
    p95 = warm[int(0.95 * (len(warm) - 1))]
    print(
        f"  warm: {len(scoreable)} scoreable findings x {warm_rounds}: median "
        f"{statistics.median(warm) * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms per finding"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["workshop", "large"])
    parser.add_argument("--large-days", type=int, default=7)
    parser.add_argument("--large-teams", type=int, default=40)
    parser.add_argument("--large-epochs", type=int, default=1)
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--warm-rounds", type=int, default=50)
    args = parser.parse_args()
    for name in args.presets:
        if name == "workshop":
            measure(name, detect.WORKSHOP_DATASET, None, args.cold_runs, args.warm_rounds)
        else:
            with tempfile.TemporaryDirectory(prefix="secml-bench-") as tmp:
                t = time.perf_counter()
                dataset = large_subset(args.large_days, args.large_teams, Path(tmp) / "large")
                print(
                    f"large subset: {args.large_days} days, {args.large_teams} teams generated "
                    f"in {time.perf_counter() - t:.0f} s"
                )
                label = f"large ({args.large_days}d/{args.large_teams} teams)"
                measure(label, dataset, args.large_epochs, args.cold_runs, args.warm_rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
