"""The scaling benchmark runs end to end on small collections."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.eval.scaling import growth_exponent, run_scaling, scaling_markdown


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
