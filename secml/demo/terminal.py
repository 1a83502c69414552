"""What `secml demo` prints: each step as it finishes, the ingest summaries, a closing summary."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from secml.demo.pipeline import DemoOptions, DemoResult, StepTime


def _fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or x != x else f"{x:.{digits}f}"


def run_with_console(options: DemoOptions, console: Console) -> DemoResult:
    from secml.demo.pipeline import StepTimer, run_local
    from secml.demo.report import ordinal, unscored_note, verdict, write_report

    console.print(f"[bold]secml demo[/bold]: the workshop offline ({options.backend} backend)")

    def on_step(step: StepTime) -> None:
        detail = f" [dim]{step.detail}[/dim]" if step.detail else ""
        console.print(f"[green]✓[/green] {step.name:<26} {step.seconds:6.1f} s{detail}")

    def on_info(kind: str, value) -> None:
        if kind == "resources":
            counts = value
            top = ", ".join(f"{n} {t.split('::')[-1]}" for t, n in counts.most_common())
            console.print(f"  [dim]the stack would create: {top}[/dim]")
        elif kind == "endpoint":
            console.print(f"  [dim]embedded S3 (moto) on {value}[/dim]")
        elif kind == "invocation":
            s = value.summary
            skipped = _reasons(s.get("skipped")) or "none"
            files_skipped = _reasons(s.get("files_skipped")) or "none"
            console.print(
                f"  {value.function}: {s.get('files_read', '?')} files, "
                f"{s.get('records', '?')} records -> {s.get('tuples_written', '?')} tuples "
                f"in {s.get('output', '?')}; skipped records: {skipped}; "
                f"skipped files: {files_skipped}"
            )

    if options.backend == "aws":
        from secml.demo.aws_backend import run_aws

        result = run_aws(options, on_step=on_step, on_info=on_info)
    else:
        result = run_local(options, on_step=on_step, on_info=on_info)
    with StepTimer(result, on_step).step("Write report") as step:
        path = write_report(result, options.out)
        step.detail = str(path)

    ok, sentence = verdict(result)
    console.print()
    console.print(("[bold green]✓ " if ok else "[bold yellow]! ") + sentence + "[/]")
    if unscored_note(result):
        console.print(f"[yellow]{unscored_note(result)}[/]")
    summary = Table(show_header=False, box=None, pad_edge=False)
    summary.add_column(style="dim")
    summary.add_column()
    det_f, det_h = result.detection_findings, result.detection_vs_holdout
    summary.add_row("AUC attacker vs benign findings", _fmt(result.auc_findings))
    summary.add_row("AUC attacker findings vs held-out normal", _fmt(result.auc_vs_holdout))
    summary.add_row(
        f"threshold ({ordinal(options.threshold_percentile)} percentile of training)",
        _fmt(result.threshold),
    )
    if det_f and det_h:
        summary.add_row(
            "precision / recall (findings)", f"{_fmt(det_f.precision, 2)} / {_fmt(det_f.recall, 2)}"
        )
        summary.add_row(
            "precision / recall (vs held-out)",
            f"{_fmt(det_h.precision, 2)} / {_fmt(det_h.recall, 2)}",
        )
    summary.add_row("total time", f"{result.total_seconds:.1f} s")
    console.print(summary)

    table = Table(title="Most suspicious GuardDuty findings", title_justify="left")
    for col in ("#", "label", "type", "principal", "address", "score"):
        table.add_column(col, justify="right" if col in ("#", "score") else "left")
    colour = {"malicious": "red", "benign": "blue"}
    for rank, f in enumerate(result.findings[:10], 1):
        table.add_row(
            str(rank),
            f"[{colour.get(f.label, 'yellow')}]{f.label}[/]",
            f.finding_type,
            f.principal,
            f.ip,
            _fmt(f.score),
        )
    if result.findings:
        console.print(table)
    if result.ranking and not result.ranking.ok:
        out_of_place = result.ranking.malicious_out_of_place + result.ranking.benign_out_of_place
        for f in out_of_place[:8]:
            console.print(
                f"  [yellow]out of place[/]: {f.label} {f.finding_type} {f.principal} @ {f.ip} "
                f"(score {_fmt(f.score)}): {result.explanations.get(f.finding_id, '')}"
            )
    console.print(
        f"report: [bold]{result.report_path}[/bold] (and scores.csv, score_histogram.png)"
    )
    return result


def _reasons(counts: object) -> str:
    if not counts:
        return ""
    if not isinstance(counts, dict):
        return str(counts)
    return ", ".join(f"{reason} {n}" for reason, n in counts.items())
