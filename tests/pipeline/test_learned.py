"""Learned features on the CPU: weights load offline, keypoints land in the COLMAP database,
batched LightGlue agrees with single pairs, and a learned preset reconstructs a scene."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pycolmap
import pytest

torch = pytest.importorskip("torch")

from pipeline import descriptor_store, learned  # noqa: E402
from pipeline.presets import PRESETS, load_preset  # noqa: E402
from pipeline.reconstruct import reconstruct  # noqa: E402
from pipeline.scoring import score_submission  # noqa: E402
from pipeline.synthetic import make_collection, render_scene  # noqa: E402

LEARNED = ["aliked", "disk", "xfeat"]


@pytest.fixture(scope="module")
def views(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("views")
    render_scene(root, 3, 320, 240, seed=5, layout=0, prefix="v")
    return sorted(root.glob("v_*.png"))


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a network connection fails the test."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("network access during a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.parametrize("name", LEARNED)
def test_extractors_load_offline_and_find_keypoints(
    name: str, views: list[Path], offline: None
) -> None:
    feats = learned.extract_image(views[0], name, 320, 512, torch.device("cpu"))
    n = len(feats.keypoints)
    assert 50 < n <= 512
    assert feats.descriptors.shape[0] == n and feats.descriptors.dtype == np.float16
    assert feats.size == (320, 240)
    # COLMAP convention: pixel centres at +0.5, all inside the image.
    assert (feats.keypoints >= 0).all()
    assert (feats.keypoints[:, 0] <= 320).all() and (feats.keypoints[:, 1] <= 240).all()


def test_resized_keypoints_come_back_in_original_pixels(views: list[Path]) -> None:
    full = learned.extract_image(views[0], "xfeat", -1, 256, torch.device("cpu"))
    half = learned.extract_image(views[0], "xfeat", 160, 256, torch.device("cpu"))
    assert half.size == full.size
    assert half.keypoints[:, 0].max() > 200  # scaled back up, not left in the 160 px frame


def _inputs(feats: learned.ImageFeatures) -> learned.PairInput:
    return learned.PairInput(
        keypoints=torch.from_numpy(feats.keypoints - 0.5),
        descriptors=torch.from_numpy(feats.descriptors.astype(np.float32)),
        size=torch.tensor(feats.size, dtype=torch.float32),
    )


@pytest.mark.parametrize("name", ["aliked", "xfeat"])
def test_batched_lightglue_matches_single_pairs(name: str, views: list[Path]) -> None:
    feats = [_inputs(learned.extract_image(p, name, 320, 384, torch.device("cpu"))) for p in views]
    net = learned.load_matcher(learned.EXTRACTOR_SPECS[name].matcher, "cpu", adaptive=False)
    pairs = [(feats[0], feats[1]), (feats[1], feats[2]), (feats[0], feats[2])]
    batched = learned.match_batch(net, pairs)
    for (a, b), got in zip(pairs, batched, strict=True):
        single = learned.match_one(net, a, b)
        assert len(single) > 20
        assert np.array_equal(np.sort(got, axis=0), np.sort(single, axis=0))


def test_device_selection_is_guarded() -> None:
    assert learned.select_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert learned.select_device("auto").type == "cpu"
        with pytest.raises(RuntimeError, match="no CUDA device"):
            learned.select_device("cuda")
    assert learned.batch_size_for(torch.device("cpu"), 2048) == 1
    assert learned.batch_size_for(torch.device("cuda"), 2048) == 64
    assert learned.batch_size_for(torch.device("cuda"), 8192) == 4


def test_learned_presets_are_plain_configs() -> None:
    for name in ("aliked-lightglue", "disk-lightglue", "xfeat"):
        config = load_preset(name)
        assert config.features.extractor in LEARNED
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
