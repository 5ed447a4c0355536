"""The scaling and throughput benchmarks run end to end on small inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.bench_scaling import growth_exponent, run_scaling, scaling_markdown
from pipeline.synthetic import render_scene


def test_growth_exponent_recovers_powers() -> None:
    sizes = [25, 50, 100, 200]
    assert growth_exponent(sizes, [3 * n for n in sizes]) == pytest.approx(1.0)
    assert growth_exponent(sizes, [n * (n - 1) / 2 for n in sizes]) == pytest.approx(2.0, abs=0.05)


@pytest.mark.slow
def test_scaling_runs_each_size(tmp_path: Path) -> None:
    runs = run_scaling(["fast"], tmp_path, sizes=(6, 12), per_scene=6)
    assert [(r.preset, r.photos) for r in runs] == [("fast", 6), ("fast", 12)]
    assert runs[0].pairs == 15 and runs[1].pairs == 66  # below 20 photos: every pair
    assert all(r.verified > 0 and r.matching_s > 0 and r.peak_rss_mb > 0 for r in runs)
    table = scaling_markdown(runs)
    assert "| fast | 12 | 66 |" in table and "matched pairs grow as N^" in table


def test_throughput_measures_on_this_device(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from pipeline.bench_throughput import measure, throughput_markdown

    render_scene(tmp_path, 3, 320, 240, seed=1, layout=0, prefix="v")
    images = sorted(tmp_path.glob("v_*.png"))
    row = measure(images, "xfeat", "cpu", max_size=320, keypoints=256, num_pairs=3, repeats=1)
    assert row.device == "cpu" and row.batch == 1
    assert row.images_per_s > 0 and row.single_pairs_per_s > 0 and row.batched_pairs_per_s > 0
    assert "| xfeat | cpu | 320 | 256 |" in throughput_markdown([row])


def test_failed_runs_are_named_with_their_error(tmp_path: Path) -> None:
    from pipeline.bench import BenchReport, DatasetRun, MethodResult
    from pipeline.bench_report import render_markdown, run_errors
    from pipeline.scoring import DatasetScore, ScoreReport

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
