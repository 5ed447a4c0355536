"""Learned presets: plain configs over the defaults, and one reconstructs a scene on the CPU
and resumes from the features and matches already on disk."""

from __future__ import annotations

from pathlib import Path

import pycolmap
import pytest

pytest.importorskip("torch")

from pipeline import descriptor_store, learned
from pipeline.eval.scoring import score_submission
from pipeline.eval.synthetic import make_collection
from pipeline.presets import PRESETS, load_preset
from pipeline.reconstruct import reconstruct


def test_learned_presets_are_plain_configs() -> None:
    for name in ("aliked-lightglue", "disk-lightglue", "xfeat"):
        config = load_preset(name)
        assert config.features.extractor in learned.MODELS
        assert config.matching.matcher == "lightglue"
        assert config.to_dict()["features"]["max_image_size"] == 1024
    assert set(PRESETS) >= {"sift", "aliked-lightglue", "disk-lightglue", "xfeat", "fast"}


@pytest.mark.slow
def test_xfeat_preset_reconstructs_and_resumes(tmp_path: Path, offline: None) -> None:
    image_dir, labels, thresholds = make_collection(tmp_path / "data", n_views=8, seed=3)
    out = tmp_path / "out"
    config = load_preset("xfeat", {"features": {"max_num_features": 1024}})
    result = reconstruct(image_dir, out, config, dataset="synthetic")
    assert len(result.clusters) >= 1
    report = score_submission(out / "submission.csv", labels, thresholds)
    assert report.final > 80, report
    db = pycolmap.Database.open(out / "database.db")
    try:
        assert db.num_keypoints() > 0 and db.num_verified_image_pairs() > 0
        image_id = db.read_all_images()[0].image_id
    finally:
        db.close()
    marker = descriptor_store.descriptor_dir(out / "database.db") / f"{image_id}.npy"
    stamp = marker.stat().st_mtime_ns
    # Forget the step markers: features and matches already on disk are not recomputed.
    for done in out.glob(".*.done"):
        done.unlink()
    again = reconstruct(image_dir, out, config, dataset="synthetic")
    assert marker.stat().st_mtime_ns == stamp
    assert [c["name"] for c in again.clusters] == [c["name"] for c in result.clusters]
