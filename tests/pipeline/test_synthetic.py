"""The synthetic scene generator: exact cameras, deterministic pixels, and real SfM success.

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

from pipeline.synthetic import (
    Quad,
    SyntheticScene,
    SyntheticView,
    build_geometry,
    depth_map,
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


def test_same_seed_gives_identical_pixels(tmp_path: Path) -> None:
    first = render_scene(tmp_path / "a", n_views=2, width=160, height=120, seed=3)
    second = render_scene(tmp_path / "b", n_views=2, width=160, height=120, seed=3)
    other = render_scene(tmp_path / "c", n_views=2, width=160, height=120, seed=4)
    for view in first.views:
        np.testing.assert_array_equal(
            pixels(first.image_dir / view.name), pixels(second.image_dir / view.name)
        )
        assert not np.array_equal(
            pixels(first.image_dir / view.name), pixels(other.image_dir / view.name)
        )
    for a, b in zip(first.views, second.views, strict=True):
        np.testing.assert_array_equal(a.R, b.R)
        np.testing.assert_array_equal(a.t, b.t)


def test_layouts_are_different_places(tmp_path: Path) -> None:
    zero = render_scene(tmp_path / "zero", n_views=1, width=160, height=120, layout=0)
    one = render_scene(tmp_path / "one", n_views=1, width=160, height=120, layout=1)
    a = pixels(zero.image_dir / zero.views[0].name).astype(float)
    b = pixels(one.image_dir / one.views[0].name).astype(float)
    assert np.abs(a - b).mean() > 10
    corners = [np.round(quad.corner, 3).tolist() for quad in build_geometry(0)]
    assert corners != [np.round(quad.corner, 3).tolist() for quad in build_geometry(1)]


def test_cameras_follow_colmap_conventions(tmp_path: Path) -> None:
    scene = render_scene(tmp_path, n_views=6, width=160, height=120)
    assert [view.name for view in scene.views] == [f"view_{i:03d}.png" for i in range(6)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [view.name for view in scene.views]
    for view in scene.views:
        np.testing.assert_allclose(view.R @ view.R.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(view.R) == pytest.approx(1.0)
        np.testing.assert_allclose(view.K, [[176, 0, 80], [0, 176, 60], [0, 0, 1]])
        assert Image.open(scene.image_dir / view.name).size == (160, 120)
        # The scene centre is in front of the camera (+z) near the middle of the image.
        pix, depth = view.project(np.array([[0.0, 0.6, 0.6]]))
        assert depth[0] > 0
        assert np.abs(pix[0] - [80, 60]).max() < 12
        # World "up" (+z) points up in the image, i.e. towards -y in camera coordinates.
        assert (view.R @ [0.0, 0.0, 1.0])[1] < -0.9
    np.testing.assert_allclose(scene.centers(), [-v.R.T @ v.t for v in scene.views])
    gaps = np.linalg.norm(np.diff(scene.centers(), axis=0), axis=1)
    assert gaps.max() < 0.25 * 7.5  # neighbouring views are close: strong overlap


def plane_depth(quad: Quad, view: SyntheticView, pix: np.ndarray) -> np.ndarray:
    """Depth (camera z) of the quad's plane along the rays through pixel centres ``pix``.

    Written from ``K, R, t`` alone, independently of the renderer's ray caster.
    """
    rays = np.column_stack([pix + 0.5, np.ones(len(pix))]) @ np.linalg.inv(view.K).T
    world = rays @ view.R  # R^T applied to each camera-frame ray (camera z = 1)
    centre = -view.R.T @ view.t
    return ((quad.corner - centre) @ quad.normal) / (world @ quad.normal)


def test_projections_land_where_the_renderer_drew_the_surface(tmp_path: Path) -> None:
    """Points on the faces, projected with x = K (R X + t), fall on pixels showing that face.

    At the pixel a point projects to, the rendered depth equals the depth of the point's face
    along that pixel's ray (visible) or is smaller (hidden behind something nearer); it can
    never be larger, which would mean that the poses and the images disagree.
    """
    width, height = 320, 240
    scene = render_scene(tmp_path, n_views=3, width=width, height=height, seed=1)
    rng = np.random.default_rng(0)
    for view in scene.views:
        depth = depth_map(scene.quads, view, width, height)
        visible = total = 0
        for quad in scene.quads:
            if quad.normal @ (view.center - quad.corner) <= 0:
                continue  # seen from behind: one-sided faces are not drawn
            ab = rng.uniform(0.2, 0.8, size=(20, 2)) * quad.size
            points = quad.corner + ab[:, :1] * quad.u_axis + ab[:, 1:] * quad.v_axis
            pix, z = view.project(points)
            keep = (z > 0) & np.all((pix >= 0) & (pix < [width, height]), axis=1)
            cells = np.floor(pix[keep]).astype(int)
            expected = plane_depth(quad, view, cells)
            rendered = depth[cells[:, 1], cells[:, 0]]
            assert np.all(rendered <= expected * (1 + 1e-4))
            visible += int(np.sum(np.abs(rendered - expected) < 1e-4 * expected))
            total += int(keep.sum())
        assert total > 200
        assert visible > 0.4 * total


def test_box_corner_projects_onto_the_rendered_corner(tmp_path: Path) -> None:
    """The far top corner of the tallest box sits on its outline: the 5x5 pixels around its
    projection show both the box's top face and, beyond the edge, something farther away.
    """
    width, height = 320, 240
    scene = render_scene(tmp_path, n_views=3, width=width, height=height, seed=3)
    tops = [q for q in scene.quads if q.normal[2] > 0.99 and q.corner[2] > 0]
    top = max(tops, key=lambda q: q.corner[2])
    for view in scene.views:
        pix, z = view.project(top.corners)
        far = int(np.argmax(z))  # seen from above, the far corner is always on the outline
        x, y = np.floor(pix[far]).astype(int)
        assert 3 <= x < width - 3 and 3 <= y < height - 3
        cells = np.stack(np.meshgrid(np.arange(x - 2, x + 3), np.arange(y - 2, y + 3)), -1)
        cells = cells.reshape(-1, 2)
        rendered = depth_map(scene.quads, view, width, height)[cells[:, 1], cells[:, 0]]
        on_top = plane_depth(top, view, cells)
        assert np.any(np.abs(rendered - on_top) < 1e-4 * on_top), "top face missing"
        assert np.any(rendered > on_top * 1.01), "nothing behind the corner: not an outline"


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
