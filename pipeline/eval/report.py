"""Tables for ``scene3d bench``: one row per (method, dataset) plus a total per method."""

from __future__ import annotations

from rich.table import Table

from pipeline.eval.bench import BenchReport, MethodResult

COLUMNS = (
    "method",
    "dataset",
    "score",
    "mAA",
    "clusterness",
    "registered",
    "features s",
    "matching s",
    "mapping s",
    "other s",
    "wall s",
    "peak RSS MiB",
)
_MAIN_STEPS = ("features", "matching", "mapping")


def _rows(method: MethodResult) -> list[list[str]]:
    rows = []
    for run in method.runs:
        ds = method.score.datasets.get(run.dataset)
        other = sum(v for k, v in run.timings.items() if k not in _MAIN_STEPS)
        rows.append(
            [
                method.method,
                run.dataset,
                f"{ds.score:.2f}" if ds else "-",
                f"{ds.mAA:.2f}" if ds else "-",
                f"{ds.clusterness:.2f}" if ds else "-",
                f"{run.registered}/{run.total}" + (" (error)" if run.error else ""),
                *(f"{run.timings.get(step, 0.0):.1f}" for step in _MAIN_STEPS),
                f"{other:.1f}",
                f"{run.wall_s:.1f}",
                f"{run.peak_rss_mb:.0f}",
            ]
        )
    registered = sum(r.registered for r in method.runs)
    total = sum(r.total for r in method.runs)
    steps = [sum(r.timings.get(s, 0.0) for r in method.runs) for s in _MAIN_STEPS]
    other = sum(v for r in method.runs for k, v in r.timings.items() if k not in _MAIN_STEPS)
    rows.append(
        [
            method.method,
            "ALL",
            f"{method.score.final:.2f}",
            "",
            "",
            f"{registered}/{total}",
            *(f"{s:.1f}" for s in steps),
            f"{other:.1f}",
            f"{method.wall_s:.1f}",
            f"{max((r.peak_rss_mb for r in method.runs), default=0):.0f}",
        ]
    )
    return rows


def render_table(report: BenchReport) -> Table:
    table = Table(title=f"scene3d bench: {report.bench_dir}")
    for col in COLUMNS:
        table.add_column(col, justify="left" if col in ("method", "dataset") else "right")
    for method in report.methods:
        for i, row in enumerate(_rows(method)):
            table.add_row(*row, style="bold" if row[1] == "ALL" else None, end_section=False)
            if i == len(method.runs):
                table.add_section()
    return table


def render_markdown(report: BenchReport) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for method in report.methods:
        lines += ["| " + " | ".join(row) + " |" for row in _rows(method)]
    errors = run_errors(report)
    if errors:
        lines += ["", *(f"- {line}" for line in errors)]
    return "\n".join(lines) + "\n"


def run_errors(report: BenchReport) -> list[str]:
    """One line per failed run: which method, which dataset, and the error's last line."""
    return [
        f"{method.method} on {run.dataset}: {_last_line(run.error)}"
        for method in report.methods
        for run in method.runs
        if run.error
    ]


def _last_line(error: str) -> str:
    lines = error.strip().splitlines()
    return lines[-1] if lines else "failed without a message"
