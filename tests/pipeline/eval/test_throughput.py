"""The throughput benchmark measures a learned extractor and its matcher on this device."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.eval.synthetic import render_scene


def test_throughput_measures_on_this_device(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from pipeline.eval.throughput import measure, throughput_markdown

    render_scene(tmp_path, 3, 320, 240, seed=1, layout=0, prefix="v")
    images = sorted(tmp_path.glob("v_*.png"))
    row = measure(images, "xfeat", "cpu", max_size=320, keypoints=256, num_pairs=3, repeats=1)
    assert row.device == "cpu" and row.batch == 1
    assert row.images_per_s > 0 and row.single_pairs_per_s > 0 and row.batched_pairs_per_s > 0
    assert "| xfeat | cpu | 320 | 256 |" in throughput_markdown([row])
