"""Cameras and rendering of synthetic scenes: COLMAP conventions, deterministic pixels, and
projections that land where the renderer drew the surface."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.eval.synthetic import Quad, SyntheticView, build_geometry, depth_map, render_scene


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


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
