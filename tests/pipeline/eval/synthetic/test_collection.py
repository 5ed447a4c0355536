"""Synthetic collections and their ground truth: the IMC layout, exact poses, outlier photos,
and real SfM success.

The SfM test is the point of the generator: if plain COLMAP cannot register every view and
recover the true camera centres, engine tests built on these scenes would test nothing.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pycolmap
import pytest
from PIL import Image

from pipeline.eval.synthetic import (
    SyntheticScene,
    make_collection,
    make_noise_image,
    render_scene,
    write_imc_ground_truth,
)


def umeyama(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity ``(s, R, t)`` minimising ``|target - (s R source + t)|`` (Umeyama 1991).

    SfM recovers cameras only up to a similarity, so it must be removed before comparing.
    """
    mu_s, mu_t = source.mean(axis=0), target.mean(axis=0)
    src, dst = source - mu_s, target - mu_t
    U, S, Vt = np.linalg.svd(dst.T @ src / len(source))
    D = np.eye(3)
    D[2, 2] = np.sign(np.linalg.det(U @ Vt))
    R = U @ D @ Vt
    scale = float(np.trace(np.diag(S) @ D) / src.var(axis=0).sum())
    return scale, R, mu_t - scale * R @ mu_s


def scene_size(scene: SyntheticScene) -> float:
    """Median camera distance from the camera centroid: the unit IMC thresholds are based on."""
    centers = scene.centers()
    return float(np.median(np.linalg.norm(centers - centers.mean(axis=0), axis=1)))


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_umeyama_recovers_a_known_similarity() -> None:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(10, 3))
    angle = 0.7
    R = np.array(
        [[math.cos(angle), -math.sin(angle), 0], [math.sin(angle), math.cos(angle), 0], [0, 0, 1]]
    )
    scale, R_est, t_est = umeyama(points, 2.5 * points @ R.T + [1.0, -2.0, 3.0])
    assert scale == pytest.approx(2.5)
    np.testing.assert_allclose(R_est, R, atol=1e-9)
    np.testing.assert_allclose(t_est, [1.0, -2.0, 3.0], atol=1e-9)


def test_ground_truth_csv_layout(tmp_path: Path) -> None:
    image_dir, labels_csv, thresholds_csv = make_collection(
        tmp_path, n_views=3, n_scenes=2, n_outliers=2, width=160, height=120
    )
    assert image_dir == tmp_path / "train" / "synthetic"
    names = sorted(p.name for p in image_dir.iterdir())
    assert names == ["outlier_000.png", "outlier_001.png"] + [
        f"scene{s}_view_{i:03d}.png" for s in range(2) for i in range(3)
    ]

    rows = list(csv.DictReader(labels_csv.open()))
    assert list(rows[0]) == ["dataset", "scene", "image", "rotation_matrix", "translation_vector"]
    assert sorted(r["image"] for r in rows) == names
    assert [r["scene"] for r in rows] == ["scene0"] * 3 + ["scene1"] * 3 + ["outliers"] * 2
    assert {r["dataset"] for r in rows} == {"synthetic"}
    for row in rows[:6]:
        R = np.array(row["rotation_matrix"].split(";"), float).reshape(3, 3)
        t = np.array(row["translation_vector"].split(";"), float)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        assert np.isfinite(t).all()
    for row in rows[6:]:
        assert row["rotation_matrix"] == ";".join(["nan"] * 9)
        assert row["translation_vector"] == ";".join(["nan"] * 3)

    thresholds = list(csv.DictReader(thresholds_csv.open()))
    assert [(r["dataset"], r["scene"]) for r in thresholds] == [
        ("synthetic", "scene0"),
        ("synthetic", "scene1"),
    ]
    for row in thresholds:
        scene_rows = [r for r in rows if r["scene"] == row["scene"]]
        centers = []
        for r in scene_rows:
            R = np.array(r["rotation_matrix"].split(";"), float).reshape(3, 3)
            centers.append(-R.T @ np.array(r["translation_vector"].split(";"), float))
        centers = np.array(centers)
        median = np.median(np.linalg.norm(centers - centers.mean(axis=0), axis=1))
        values = [float(v) for v in row["thresholds"].split(";")]
        np.testing.assert_allclose(
            values, median * np.array([0.25, 0.5, 1, 2, 5, 10]) / 100, rtol=1e-4
        )


def test_write_ground_truth_round_trips_poses(tmp_path: Path) -> None:
    scene = render_scene(tmp_path / "img", n_views=2, width=80, height=60)
    labels, thresholds = tmp_path / "labels.csv", tmp_path / "thresholds.csv"
    write_imc_ground_truth({"place": scene}, "demo", labels, thresholds)
    rows = list(csv.DictReader(labels.open()))
    assert [(r["dataset"], r["scene"], r["image"]) for r in rows] == [
        ("demo", "place", "view_000.png"),
        ("demo", "place", "view_001.png"),
    ]
    for row, view in zip(rows, scene.views, strict=True):
        np.testing.assert_array_equal(
            np.array(row["rotation_matrix"].split(";"), float), view.R.ravel()
        )
        np.testing.assert_array_equal(np.array(row["translation_vector"].split(";"), float), view.t)
    assert len(list(csv.DictReader(thresholds.open()))) == 1


def test_noise_image_is_deterministic_and_unrelated(tmp_path: Path) -> None:
    make_noise_image(tmp_path / "a.png", width=200, height=100, seed=5)
    make_noise_image(tmp_path / "b.png", width=200, height=100, seed=5)
    make_noise_image(tmp_path / "c.png", width=200, height=100, seed=6)
    a = pixels(tmp_path / "a.png")
    assert a.shape == (100, 200, 3)
    assert a.std() > 10
    np.testing.assert_array_equal(a, pixels(tmp_path / "b.png"))
    assert not np.array_equal(a, pixels(tmp_path / "c.png"))


def test_plain_colmap_recovers_the_true_cameras(tmp_path: Path) -> None:
    """Plain pycolmap (SIFT, exhaustive matching, incremental mapping) on 9 views at 640x480
    registers every view in one model, with camera centres within 1% of the scene size.
    """
    scene = render_scene(tmp_path / "images", n_views=9, width=640, height=480, seed=0)
    database, output = tmp_path / "database.db", tmp_path / "sparse"
    output.mkdir()
    pycolmap.set_random_seed(0)
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.num_threads = 2
    pycolmap.extract_features(database, scene.image_dir, extraction_options=extraction)
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = 2
    pycolmap.match_exhaustive(database, matching_options=matching)
    mapping = pycolmap.IncrementalPipelineOptions()
    mapping.num_threads = 1
    mapping.random_seed = 0
    recs = pycolmap.incremental_mapping(database, scene.image_dir, output, options=mapping)

    assert recs, "COLMAP built no model"
    rec = max(recs.values(), key=lambda r: r.num_reg_images())
    estimated = {im.name: im.projection_center() for im in rec.images.values() if im.has_pose}
    assert sorted(estimated) == sorted(view.name for view in scene.views)
    assert rec.compute_mean_reprojection_error() < 0.5

    truth = {view.name: view.center for view in scene.views}
    names = sorted(truth)
    source = np.array([estimated[name] for name in names])
    target = np.array([truth[name] for name in names])
    scale, R, t = umeyama(source, target)
    errors = np.linalg.norm(scale * source @ R.T + t - target, axis=1)
    assert errors.max() < 0.01 * scene_size(scene)

    focal = scene.views[0].K[0, 0]
    for camera in rec.cameras.values():
        assert camera.focal_length == pytest.approx(focal, rel=0.01)
