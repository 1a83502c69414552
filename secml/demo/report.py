"""The demo's report: one self-contained HTML page (inline CSS, base64 PNG), a PNG, scores.csv."""
# ruff: noqa: E501  (HTML and CSS fragments read better unwrapped)

from __future__ import annotations

import base64
import csv
import html
import io
import math
from pathlib import Path

from secml.demo.pipeline import DemoResult

# Colours: one neutral for normal traffic, one warm for attackers, one cool for benign findings.
TRAINING = "#9aa5b1"
MALICIOUS = "#d64545"
BENIGN = "#2f80ed"
HOLDOUT = "#52606d"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def verdict(result: DemoResult) -> tuple[bool, str]:
    """(ok, one sentence) for the headline and the terminal."""
    check = result.ranking
    if check is None or not result.findings:
        return False, "no findings were scored"
    if check.n_malicious == 0:
        return False, "no attacker finding (per truth.csv) could be scored: nothing to rank"
    if check.ok:
        return True, (
            f"All {check.n_malicious} scored attacker findings rank above all "
            f"{check.n_benign} scored benign findings."
        )
    above = check.n_malicious - len(check.malicious_out_of_place)
    below = len(check.malicious_out_of_place)
    return False, (
        f"{above} of {check.n_malicious} scored attacker findings rank above every benign "
        f"finding; {below} {'ranks' if below == 1 else 'rank'} among the benign ones "
        f"({_plural(len(check.benign_out_of_place), 'benign finding')} above {'it' if below == 1 else 'them'})."
    )


def unscored_note(result: DemoResult) -> str:
    """The labelled findings IP Insights could not score, in one sentence ('' if none)."""
    if not result.ranking or not result.ranking.unscored:
        return ""
    unscored = result.ranking.unscored
    mal = sum(1 for f in unscored if f.label == "malicious")
    ben = len(unscored) - mal
    parts = [
        _plural(n, f"{label} finding") for n, label in ((mal, "attacker"), (ben, "benign")) if n
    ]
    return f"Not ranked: {' and '.join(parts)} without a (principal, IP) pair to score (why below)."


def ordinal(n: float) -> str:
    """1 -> 1st, 2.5 -> 2.5th: for "the 1st percentile"."""
    if n != int(n):
        return f"{n:g}th"
    n = int(n)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def histogram_png(result: DemoResult) -> bytes:
    """Training (and held-out) score densities on top, the findings' scores below, one x axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    def scores(label: str | None) -> np.ndarray:
        return np.array(
            [
                f.score
                for f in result.findings
                if f.score is not None
                and (f.label == label if label else f.label not in ("malicious", "benign"))
            ]
        )

    train, holdout = result.training_scores, result.holdout_scores
    groups = [
        (x, colour, label)
        for x, colour, label in (
            (scores("malicious"), MALICIOUS, "attacker (truth.csv)"),
            (scores("benign"), BENIGN, "benign (truth.csv)"),
            (scores(None), "#f0b429", "unlabelled"),
        )
        if x.size
    ]
    everything = np.concatenate([train, holdout] + [g[0] for g in groups])
    bins = np.linspace(everything.min(), everything.max(), 70)

    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(10, 5.4), dpi=110, sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    top.hist(
        train,
        bins=bins,
        density=True,
        color=TRAINING,
        alpha=0.8,
        label="CloudTrail training tuples",
    )
    if holdout.size:
        top.hist(
            holdout,
            bins=bins,
            density=True,
            histtype="step",
            color=HOLDOUT,
            linewidth=1.4,
            label="held-out normal CloudTrail tuples",
        )
    top.set_ylabel("density")
    top.set_title("Training: normal CloudTrail traffic", loc="left", fontsize=10)
    if groups:
        bottom.hist(
            [g[0] for g in groups],
            bins=bins,
            stacked=True,
            color=[g[1] for g in groups],
            label=[g[2] for g in groups],
        )
    bottom.set_ylabel("findings")
    bottom.set_title("Scored: GuardDuty findings", loc="left", fontsize=10)
    bottom.set_xlabel("IP Insights score (dot product); lower is more anomalous")
    for ax in (top, bottom):
        ax.axvline(result.threshold, color="#111", linestyle="--", linewidth=1.2)
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(loc="upper left", fontsize=8.5, frameon=False)
    top.annotate(
        f"threshold {result.threshold:.2f}\n{ordinal(result.options.threshold_percentile)} percentile of training",
        xy=(result.threshold, 0.97), xycoords=("data", "axes fraction"), ha="left", va="top",
        fontsize=8.5, xytext=(5, 0), textcoords="offset points",
        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1.5},
    )  # fmt: skip
    bottom.yaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _fmt(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def write_scores_csv(result: DemoResult, path: Path) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["rank", "finding_id", "finding_type", "principal", "ip", "score", "flagged", "label",
             "scenario", "why"]
        )  # fmt: skip
        for rank, f in enumerate(result.findings, 1):
            writer.writerow(
                [
                    rank,
                    f.finding_id,
                    f.finding_type,
                    f.principal,
                    f.ip,
                    "" if f.score is None else f"{f.score:.6f}",
                    "" if f.score is None else str(f.score < result.threshold).lower(),
                    f.label,
                    f.scenario,
                    result.explanations.get(f.finding_id, ""),
                ]
            )


CSS = """
:root { --ok:#1f9d55; --bad:#d64545; --warn:#f0b429; --ink:#1f2933; --muted:#616e7c;
        --line:#e4e7eb; --bg:#f5f7fa; --mal:#d64545; --ben:#2f80ed; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color:var(--ink); background:var(--bg); }
main { max-width:1180px; margin:0 auto; padding:28px 32px 60px; }
h1 { font-size:26px; margin:0 0 4px; }
h2 { font-size:19px; margin:34px 0 10px; padding-bottom:6px; border-bottom:1px solid var(--line); }
.sub { color:var(--muted); margin:0 0 20px; }
.verdict { border-radius:10px; padding:18px 22px; color:#fff; font-size:19px; font-weight:600;
           display:flex; gap:14px; align-items:center; }
.verdict.ok { background:var(--ok); } .verdict.bad { background:#c05621; }
.verdict .icon { font-size:30px; line-height:1; }
.verdict small { display:block; font-weight:400; font-size:14px; opacity:.92; }
.cards { display:grid; grid-template-columns:repeat(auto-fit, minmax(170px, 1fr)); gap:12px; margin:18px 0 0; }
.card { background:#fff; border:1px solid var(--line); border-radius:10px; padding:12px 16px; }
.card .v { font-size:24px; font-weight:700; } .card .k { color:var(--muted); font-size:13px; }
.panel { background:#fff; border:1px solid var(--line); border-radius:10px; padding:14px 16px; }
img.plot { width:100%; height:auto; display:block; }
table { border-collapse:collapse; width:100%; background:#fff; font-size:13.5px; }
th, td { padding:6px 10px; border-bottom:1px solid var(--line); text-align:left; vertical-align:top; }
th { background:#eef2f7; font-weight:600; position:sticky; top:0; }
td.num { text-align:right; font-variant-numeric:tabular-nums; }
td.mono, span.mono { font-family:ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size:12.5px; }
tr.malicious td:first-child { border-left:4px solid var(--mal); }
tr.benign td:first-child { border-left:4px solid var(--ben); }
tr.oop { background:#fff4e5; }
.badge { display:inline-block; padding:1px 8px; border-radius:999px; font-size:12px; font-weight:600; color:#fff; }
.badge.malicious { background:var(--mal); } .badge.benign { background:var(--ben); }
.badge.unknown { background:#9aa5b1; } .flag { color:var(--bad); font-weight:700; }
.two { display:grid; grid-template-columns:1fr 1fr; gap:16px; }
.muted { color:var(--muted); } .note { font-size:13px; color:var(--muted); margin:6px 0 0; }
pre.log { font:12px/1.4 ui-monospace, Menlo, Consolas, monospace; background:#f5f7fa; padding:8px;
          overflow-x:auto; max-height:320px; white-space:pre; }
table.ranked td.finding { word-break:break-word; max-width:380px; }
table.ranked td.addr { word-break:break-all; max-width:200px; }
.scenario { color:var(--muted); font-size:12px; }
details summary { cursor:pointer; color:var(--muted); margin:8px 0; }
"""


def _e(x: object) -> str:
    return html.escape(str(x))


def render_html(result: DemoResult, png: bytes) -> str:
    ok, sentence = verdict(result)
    check = result.ranking
    det_f, det_h = result.detection_findings, result.detection_vs_holdout
    n_flagged = sum(
        1 for f in result.findings if f.score is not None and f.score < result.threshold
    )
    oop = set()
    if check:
        oop = {f.finding_id for f in check.malicious_out_of_place + check.benign_out_of_place}

    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        "<title>secml demo: IP Insights on GuardDuty findings</title>",
        f"<style>{CSS}</style></head><body><main>",
        "<h1>GuardDuty findings, ranked by IP Insights</h1>",
        f"<p class='sub'>The workshop, offline: dataset <span class='mono'>{_e(result.dataset)}</span>, "
        f"{result.n_train_tuples:,} CloudTrail training tuples, {len(result.findings)} GuardDuty "
        f"findings, run in {result.total_seconds:.1f} s. "
        + (
            "Trained on every tuple, the pairs under investigation included "
            "(--train-on-scored-pairs).</p>"
            if result.options.train_on_scored_pairs
            else f"The {result.n_excluded_tuples:,} CloudTrail tuples of the (principal, IP) "
            "pairs under investigation were left out of training and hold-out, as training on "
            "the past would in production.</p>"
        ),
        f"<div class='verdict {'ok' if ok else 'bad'}'><span class='icon'>{'&#10004;' if ok else '&#9888;'}</span>"
        f"<div>{_e(sentence)}<small>{_e(unscored_note(result))} Findings are ranked by the score of their "
        "(principal, IP) pair; lower = more anomalous. Labels come from the dataset's truth.csv.</small></div></div>",
        "<div class='cards'>",
        _card(_fmt(result.auc_findings), "AUC: attacker vs benign findings"),
        _card(_fmt(result.auc_vs_holdout), "AUC: attacker findings vs held-out normal tuples"),
        _card(
            f"{_fmt(det_f.precision, 2)} / {_fmt(det_f.recall, 2)}" if det_f else "n/a",
            "precision / recall at the threshold (findings)",
        ),
        _card(
            f"{_fmt(det_h.precision, 2)} / {_fmt(det_h.recall, 2)}" if det_h else "n/a",
            "precision / recall vs held-out normal tuples",
        ),
        _card(
            f"{n_flagged} / {len(result.findings)}",
            f"findings flagged (score &lt; {_fmt(result.threshold, 2)})",
            raw=True,
        ),
        "</div>",
        "<h2>Score distributions</h2><div class='panel'>",
        f"<img class='plot' alt='score histograms' src='data:image/png;base64,{base64.b64encode(png).decode()}'>",
        f"<p class='note'>Threshold: the {ordinal(result.options.threshold_percentile)} percentile of the training "
        f"scores ({_fmt(result.threshold)}); a pair scoring below it is flagged. Held out: "
        f"{result.n_holdout_tuples:,} random normal CloudTrail tuples ({result.options.holdout_fraction:.0%}), "
        "never trained on.</p></div>",
    ]
    parts.append("<h2>Ranked findings</h2>")
    parts.append(
        "<p class='note'>Most suspicious first. Highlighted rows are out of place (an attacker "
        "finding below a benign one, or the reverse); n/a: no (principal, IP) pair to score.</p>"
        "<table class='ranked'><thead><tr><th>#</th><th>label</th><th>finding</th><th>principal</th>"
        "<th>address</th><th class='num'>score</th><th>flagged</th></tr></thead><tbody>"
    )
    for rank, f in enumerate(result.findings, 1):
        cls = f.label + (" oop" if f.finding_id in oop else "")
        flagged = (
            ""
            if f.score is None
            else ("<span class='flag'>yes</span>" if f.score < result.threshold else "no")
        )
        parts.append(
            f"<tr class='{_e(cls)}' title='{_e(f.finding_id)}'><td class='num'>{rank}</td>"
            f"<td><span class='badge {_e(f.label)}'>{_e(f.label)}</span></td>"
            f"<td class='finding'>{_e(f.finding_type)}<div class='scenario'>{_e(f.scenario)}</div></td>"
            f"<td class='mono'>{_e(f.principal or '-')}</td>"
            f"<td class='mono addr'>{_e(f.ip or '-')}</td><td class='num'>{_fmt(f.score)}</td>"
            f"<td>{flagged}</td></tr>"
        )
    parts.append("</tbody></table>")

    parts.append("<h2>Does the ranking hold?</h2><div class='panel'>")
    if check and check.ok:
        parts.append(
            f"<p>Yes: the highest-scoring attacker finding ({_fmt(_max_score(result, 'malicious'))}) scores "
            f"below the lowest-scoring benign one ({_fmt(_min_score(result, 'benign'))}).</p>"
        )
    elif check:
        parts.append(
            "<p>No. These findings are out of place, with what the model had seen in training:</p><ul>"
        )
        for f in check.malicious_out_of_place + check.benign_out_of_place:
            parts.append(
                f"<li><span class='badge {_e(f.label)}'>{_e(f.label)}</span> {_e(f.finding_type)} "
                f"<span class='mono'>{_e(f.principal)} @ {_e(f.ip)}</span> score {_fmt(f.score)}: "
                f"{_e(result.explanations.get(f.finding_id, ''))}</li>"
            )
        parts.append("</ul>")
    if check and check.unscored:
        parts.append("<p>Not ranked (labelled in truth.csv, but no pair to score):</p><ul>")
        for f in check.unscored:
            parts.append(
                f"<li><span class='badge {_e(f.label)}'>{_e(f.label)}</span> {_e(f.finding_type)} "
                f"<span class='mono'>{_e(f.principal or '(no principal)')} @ {_e(f.ip or '(no IP)')}</span>: "
                f"{_e(result.explanations.get(f.finding_id, ''))}</li>"
            )
        parts.append("</ul>")
    parts.append("</div>")

    parts.append("<h2>Ingest Lambdas</h2><div class='two'>")
    for inv in result.invocations:
        parts.append(
            f"<div class='panel'><b>{_e(inv.function)}</b> <span class='muted'>({inv.seconds:.2f} s)</span>"
        )
        parts.append(_summary_table(inv.summary))
        if inv.output:
            lines = inv.output.splitlines()
            parts.append(
                f"<details><summary>printed output, {len(lines)} lines (CloudWatch Logs when deployed)</summary><pre class='log'>"
            )
            parts.append(_e("\n".join(lines[:200])) + ("\n..." if len(lines) > 200 else ""))
            parts.append("</pre></details>")
        if inv.warnings:
            parts.append(f"<details><summary>{len(inv.warnings)} warnings logged</summary><ul>")
            parts += [f"<li class='mono'>{_e(w)}</li>" for w in inv.warnings[:50]]
            parts.append("</ul></details>")
        parts.append("</div>")
    parts.append("</div>")

    parts.append("<h2>Run</h2><div class='two'><div class='panel'><b>Step timings</b><table>")
    for s in result.steps:
        parts.append(
            f"<tr><td>{_e(s.name)}<div class='note'>{_e(s.detail)}</div></td><td class='num'>{s.seconds:.1f} s</td></tr>"
        )
    parts.append(
        f"<tr><th>Total</th><th class='num'>{result.total_seconds:.1f} s</th></tr></table></div>"
    )
    if result.resource_counts:
        parts.append(
            f"<div class='panel'><b>{'What the stack created' if result.options.backend == 'aws' else 'What the stack would create'}</b> "
            f"<span class='muted'>({_e(result.stack_name)}, "
            f"{sum(result.resource_counts.values())} resources)</span><table>"
        )
        for rtype, n in sorted(result.resource_counts.items(), key=lambda kv: (-kv[1], kv[0])):
            parts.append(f"<tr><td class='mono'>{_e(rtype)}</td><td class='num'>{n}</td></tr>")
        parts.append("</table></div>")
    parts.append("</div>")
    parts.append("<h2>Buckets</h2><div class='panel'>")
    for bucket, keys in result.bucket_contents.items():
        total = sum(size for _, size in keys)
        parts.append(
            f"<details><summary><span class='mono'>s3://{_e(bucket)}</span>: {len(keys)} objects, {total / 1e6:.2f} MB</summary><ul>"
        )
        parts += [f"<li class='mono'>{_e(k)} ({size:,} B)</li>" for k, size in keys[:200]]
        if len(keys) > 200:
            parts.append(f"<li class='muted'>... {len(keys) - 200} more</li>")
        parts.append("</ul></details>")
    o = result.options
    parts.append(
        "<p class='note'>Model: local IP Insights (secml.ipinsights), "
        + ", ".join(f"{k}={v}" for k, v in sorted(result.hyperparameters.items()))
        + f", seed={o.seed}. Per-finding scores and "
        "reasons: scores.csv next to this file.</p></div>"
    )
    parts.append("</main></body></html>")
    return "\n".join(parts)


def _card(value: str, key: str, raw: bool = False) -> str:
    return f"<div class='card'><div class='v'>{_e(value)}</div><div class='k'>{key if raw else _e(key)}</div></div>"


def _summary_table(summary: dict) -> str:
    rows = []
    for key, value in summary.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items()) or "none"
        rows.append(f"<tr><td>{_e(key)}</td><td class='mono'>{_e(value)}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def _max_score(result: DemoResult, label: str) -> float:
    scores = [f.score for f in result.findings if f.label == label and f.score is not None]
    return max(scores) if scores else math.nan


def _min_score(result: DemoResult, label: str) -> float:
    scores = [f.score for f in result.findings if f.label == label and f.score is not None]
    return min(scores) if scores else math.nan


def write_report(result: DemoResult, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    png = histogram_png(result)
    (out / "score_histogram.png").write_bytes(png)
    write_scores_csv(result, out / "scores.csv")
    path = out / "report.html"
    path.write_text(render_html(result, png), encoding="utf-8")
    result.report_path = path
    return path
