"""Cameras and rendering: pinhole views on an arc around the scene, vectorised numpy ray
casting of the geometry, bilinear texturing and Lambertian shading.

Poses follow COLMAP conventions: world-to-camera ``x = K (R X + t)``, the camera looks along
``+z`` with ``y`` pointing down, and pixel ``(i, j)`` covers ``[i, i+1) x [j, j+1)``, so its
centre is at ``(i + 0.5, j + 0.5)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.eval.synthetic.geometry import Quad

BACKGROUND = 0.5
"""Grey level where a ray hits nothing: flat, so it adds no (possibly wrong) keypoints."""
SUPERSAMPLE = 2
"""Rays per pixel along each axis: 2x2 supersampling is cheap and removes most aliasing."""


@dataclass
class SyntheticView:
    """One rendered image and the exact camera that took it (COLMAP conventions)."""

    name: str
    """File name inside the scene's image folder, e.g. ``view_000.png``."""
    R: np.ndarray
    """3x3 world-to-camera rotation."""
    t: np.ndarray
    """(3,) world-to-camera translation."""
    K: np.ndarray
    """3x3 pinhole intrinsics (no distortion)."""

    @property
    def center(self) -> np.ndarray:
        """Camera centre in world coordinates, ``-R^T t``."""
        return -self.R.T @ self.t

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (n, 2) and depths (n,) of world points (n, 3)."""
        cam = np.asarray(points, float) @ self.R.T + self.t
        pix = cam @ self.K.T
        return pix[:, :2] / pix[:, 2:3], cam[:, 2]


# --------------------------------------------------------------------------- cameras


def _look_at(center: np.ndarray, target: np.ndarray) -> np.ndarray:
    """World-to-camera rotation of a camera at ``center`` looking at ``target``, z up.

    Rows are the camera's right, down and forward axes in world coordinates (COLMAP: x right,
    y down, z forward), which is a proper rotation because right x down = forward.
    """
    forward = target - center
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([right, down, forward])


def arc_cameras(
    n_views: int, width: int, height: int, rng: np.random.Generator, prefix: str
) -> list[SyntheticView]:
    """Cameras on an arc in front of the back wall, all looking at the scene centre.

    Neighbouring views are at most ~11 degrees apart, so they overlap strongly; small seeded
    jitter in azimuth, radius, height and aim keeps the set from being perfectly regular.
    """
    focal = 1.1 * width
    K = np.array([[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]])
    span = math.radians(min(110.0, 11.0 * max(n_views - 1, 0)))
    views = []
    for i in range(n_views):
        frac = i / (n_views - 1) if n_views > 1 else 0.5
        azimuth = -math.pi / 2 + span * (frac - 0.5) + math.radians(rng.uniform(-1.5, 1.5))
        radius = 7.5 + rng.uniform(-0.3, 0.3)
        center = np.array(
            [
                radius * math.cos(azimuth),
                0.5 + radius * math.sin(azimuth),
                3.0 + rng.uniform(-0.3, 0.3),
            ]
        )
        target = np.array([0.0, 0.6, 0.6]) + rng.uniform(-0.15, 0.15, size=3)
        R = _look_at(center, target)
        views.append(SyntheticView(name=f"{prefix}_{i:03d}.png", R=R, t=-R @ center, K=K.copy()))
    return views


# --------------------------------------------------------------------------- rendering


@dataclass
class _Hits:
    """Per-ray nearest hit: depth along the ray, quad index (-1: none), face coordinates."""

    t: np.ndarray
    quad: np.ndarray
    u: np.ndarray
    v: np.ndarray


def _ray_directions(view: SyntheticView, width: int, height: int, samples: int) -> np.ndarray:
    """World ray directions (H*s, W*s, 3) through sub-pixel centres, scaled to camera z = 1.

    With this scale the ray parameter of a hit equals its depth along the optical axis.
    """
    offsets = (np.arange(samples) + 0.5) / samples
    xs = (np.arange(width)[:, None] + offsets).ravel()
    ys = (np.arange(height)[:, None] + offsets).ravel()
    K_inv = np.linalg.inv(view.K)
    to_world = (view.R.T @ K_inv).astype(np.float32)  # pixel -> camera ray -> world ray
    pix = np.empty((ys.size, xs.size, 3), np.float32)
    pix[..., 0], pix[..., 1], pix[..., 2] = xs[None, :], ys[:, None], 1.0
    return pix @ to_world.T


def _screen_box(
    quad: Quad, view: SyntheticView, shape: tuple[int, int], samples: int
) -> tuple[slice, slice]:
    """Sample rows/columns the quad can cover; the whole image if it crosses the camera plane."""
    pix, depth = view.project(quad.corners)
    if np.any(depth <= 1e-6):
        return slice(0, shape[0]), slice(0, shape[1])
    lo = np.floor(pix.min(axis=0) * samples).astype(int) - 1
    hi = np.ceil(pix.max(axis=0) * samples).astype(int) + 2
    return (slice(max(lo[1], 0), min(hi[1], shape[0])), slice(max(lo[0], 0), min(hi[0], shape[1])))


def _cast(
    quads: Sequence[Quad], view: SyntheticView, width: int, height: int, samples: int
) -> _Hits:
    """Nearest front-facing quad for every ray (a z-buffer filled one quad at a time).

    All rays start at the camera centre, so a quad faces either all rays or none, and only
    the pixels inside its projected bounding box need testing: each quad costs one vectorised
    plane intersection over that window.
    """
    dirs = _ray_directions(view, width, height, samples)
    shape = dirs.shape[:2]
    hits = _Hits(
        np.full(shape, np.inf, np.float32),
        np.full(shape, -1, np.int32),
        np.zeros(shape, np.float32),
        np.zeros(shape, np.float32),
    )
    origin = view.center
    for index, quad in enumerate(quads):
        offset = origin - quad.corner
        height_above = float(offset @ quad.normal)
        if height_above <= 1e-9:
            continue  # camera behind the face: it is invisible from here
        rows, cols = _screen_box(quad, view, shape, samples)
        axes = np.stack([quad.normal, quad.u_axis, quad.v_axis], axis=1).astype(np.float32)
        along = dirs[rows, cols] @ axes  # ray components along normal, u and v
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.float32(-height_above) / along[..., 0]
        u = np.float32(offset @ quad.u_axis) + t * along[..., 1]
        v = np.float32(offset @ quad.v_axis) + t * along[..., 2]
        inside = (
            (t > 0)
            & (u >= 0)
            & (u <= quad.size[0])
            & (v >= 0)
            & (v <= quad.size[1])
            & (t < hits.t[rows, cols])
        )
        for target, value in ((hits.t, t), (hits.u, u), (hits.v, v)):
            np.copyto(target[rows, cols], value, where=inside)
        hits.quad[rows, cols][inside] = index
    return hits


def _shade(quads: Sequence[Quad], hits: _Hits) -> np.ndarray:
    """RGB radiance (H, W, 3) of the hits: bilinear texture x tint x Lambertian shade.

    All textures are packed into one flat atlas so every ray is sampled in one vectorised
    gather, whichever face it hit; everything stays float32/int32 because this is the
    renderer's hot loop.
    """
    atlas = np.concatenate([quad.texture.ravel() for quad in quads] + [np.zeros(1, np.float32)])
    starts = np.cumsum([0] + [quad.texture.size for quad in quads])[:-1]
    widths = np.array([quad.texture.shape[1] for quad in quads])
    heights = np.array([quad.texture.shape[0] for quad in quads])
    colour = np.array([quad.tint * quad.shade for quad in quads], np.float32)

    hit = hits.quad >= 0
    k = hits.quad[hit]
    x = hits.u[hit] * np.array([q.texels_per_unit for q in quads], np.float32)[k]
    y = hits.v[hit] * np.array([q.texels_per_unit for q in quads], np.float32)[k]
    np.clip(x, 0, (widths - 1.001).astype(np.float32)[k], out=x)
    np.clip(y, 0, (heights - 1.001).astype(np.float32)[k], out=y)
    x0, y0 = x.astype(np.int32), y.astype(np.int32)
    fx, fy = x - x0, y - y0
    index = starts[k] + y0.astype(np.int64) * widths[k] + x0
    below = index + widths[k]
    top = atlas[index] * (1 - fx) + atlas[index + 1] * fx
    bottom = atlas[below] * (1 - fx) + atlas[below + 1] * fx
    grey = top * (1 - fy) + bottom * fy

    rgb = np.full((*hits.quad.shape, 3), BACKGROUND, np.float32)
    for channel in range(3):
        rgb[..., channel][hit] = grey * colour[:, channel][k]
    return rgb


def render_view(
    quads: Sequence[Quad], view: SyntheticView, width: int, height: int, samples: int = SUPERSAMPLE
) -> np.ndarray:
    """The 8-bit RGB image (H, W, 3) a view sees, averaged over ``samples``^2 rays per pixel."""
    rgb = _shade(quads, _cast(quads, view, width, height, samples))
    rgb = rgb.reshape(height, samples, width, samples, 3).mean(axis=(1, 3))
    return np.round(np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8)


def depth_map(quads: Sequence[Quad], view: SyntheticView, width: int, height: int) -> np.ndarray:
    """Depth along the optical axis at every pixel centre (inf where nothing is hit).

    Uses the renderer's own ray caster, so tests can check that ``K, R, t`` describe the
    rendered pixels exactly.
    """
    return _cast(quads, view, width, height, 1).t
