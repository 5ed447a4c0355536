"""The benchmark's tables name every failed run with its error."""

from __future__ import annotations

from pathlib import Path

from pipeline.eval.bench import BenchReport, DatasetRun, MethodResult
from pipeline.eval.report import render_markdown, run_errors
from pipeline.eval.scoring import DatasetScore, ScoreReport


def test_failed_runs_are_named_with_their_error(tmp_path: Path) -> None:
    ok = DatasetRun("fox", 34, 36, {"features": 1.0}, 2.0, 100.0)
    failed = DatasetRun(
        "middlebury", 0, 35, {}, 3.0, 90.0, error="Traceback\n  ...\nReconstructionError: no scene"
    )
    score = ScoreReport(50.0, {"fox": DatasetScore(100.0, 100.0, 100.0)})
    report = BenchReport(tmp_path, [MethodResult("xfeat", [ok, failed], score, tmp_path / "s.csv")])
    assert run_errors(report) == ["xfeat on middlebury: ReconstructionError: no scene"]
    markdown = render_markdown(report)
    assert "| xfeat | middlebury | - | - | - | 0/35 (error) |" in markdown
    assert markdown.rstrip().endswith("- xfeat on middlebury: ReconstructionError: no scene")
    failed.error = " \n"  # a run that failed without a message is still named
    assert run_errors(report) == ["xfeat on middlebury: failed without a message"]
