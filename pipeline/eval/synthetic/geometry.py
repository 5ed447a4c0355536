"""The geometry of a synthetic place: textured one-sided rectangles (ground, walls, boxes).

Every face carries a high-frequency, non-repeating procedural texture attached to the surface
(not to the screen), so the same surface point looks the same from every view and SIFT finds
many distinctive, matchable keypoints. ``layout`` changes the arrangement and the texture
family, so two layouts look like two different places.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

LIGHT_DIR = np.array([0.45, -0.55, 0.70]) / np.linalg.norm([0.45, -0.55, 0.70])
"""Direction towards a distant light; faces with different normals get different brightness."""
AMBIENT = 0.4
"""Share of light every face gets, so faces turned away from the light keep their texture."""


@dataclass(frozen=True)
class Quad:
    """A textured, one-sided rectangle ``corner + a * u_axis + b * v_axis``.

    Only its front side (normal ``u_axis x v_axis``) is visible, which is exactly what closed
    boxes and walls need and lets the renderer skip faces turned away from a camera.
    """

    corner: np.ndarray
    u_axis: np.ndarray
    """Unit vector along the first edge."""
    v_axis: np.ndarray
    """Unit vector along the second edge, orthogonal to ``u_axis``."""
    size: tuple[float, float]
    """Edge lengths along ``u_axis`` and ``v_axis`` in world units."""
    texture: np.ndarray = field(repr=False)
    """Grey texture in [0, 1], row = v, column = u, ``texels_per_unit`` texels per world unit."""
    texels_per_unit: float
    tint: np.ndarray
    """RGB colour multiplied onto the texture, so different surfaces differ in colour too."""

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.u_axis, self.v_axis)

    @property
    def corners(self) -> np.ndarray:
        """The four corners (4, 3), in order around the rectangle."""
        du, dv = self.u_axis * self.size[0], self.v_axis * self.size[1]
        return np.stack([self.corner, self.corner + du, self.corner + du + dv, self.corner + dv])

    @property
    def shade(self) -> float:
        """Lambertian brightness of the face under :data:`LIGHT_DIR`."""
        return AMBIENT + (1.0 - AMBIENT) * max(0.0, float(self.normal @ LIGHT_DIR))


# --------------------------------------------------------------------------- textures


def _upsample_matrix(n_out: int, cell: float, offset: float, smooth: bool) -> sparse.csr_matrix:
    """Sparse (n_out, n_in) matrix that resamples a coarse grid with spacing ``cell`` texels.

    ``smooth`` uses cubic B-spline weights (smooth blobs), otherwise nearest neighbour
    (piecewise-constant blocks). Separable sparse products are several times faster than
    ``scipy.ndimage.zoom`` and this runs for every face of every scene.
    """
    pos = (np.arange(n_out) + offset) / cell + 1.0  # +1: room for the tap left of the first
    base = np.floor(pos).astype(int)
    if smooth:
        f = pos - base
        weights = (
            np.stack(
                [(1 - f) ** 3, 3 * f**3 - 6 * f**2 + 4, -3 * f**3 + 3 * f**2 + 3 * f + 1, f**3],
                axis=1,
            )
            / 6.0
        )
        cols = base[:, None] + np.arange(-1, 3)[None, :]
    else:
        weights, cols = np.ones((n_out, 1)), base[:, None]
    rows = np.repeat(np.arange(n_out), cols.shape[1])
    shape = (n_out, int(cols.max()) + 1)
    return sparse.csr_matrix((weights.ravel(), (rows, cols.ravel())), shape=shape)


def value_noise(
    shape: tuple[int, int], cell: float, rng: np.random.Generator, smooth: bool = True
) -> np.ndarray:
    """Random values on a grid of ``cell`` texels, interpolated to ``shape``.

    A random sub-cell offset keeps the grids of different layers from lining up.
    """
    cell = max(float(cell), 1.0)
    rows = _upsample_matrix(shape[0], cell, rng.uniform(0, cell), smooth)
    cols = _upsample_matrix(shape[1], cell, rng.uniform(0, cell), smooth)
    grid = rng.random((rows.shape[1], cols.shape[1]))
    return np.asarray((cols @ (rows @ grid).T).T)


def normalise(layer: np.ndarray) -> np.ndarray:
    """Stretch a layer to zero mean and unit standard deviation, so weights mean contrast."""
    return (layer - layer.mean()) / (layer.std() + 1e-9)


def _make_texture(
    shape: tuple[int, int], texels_per_unit: float, family: int, rng: np.random.Generator
) -> np.ndarray:
    """A non-repeating grey texture that SIFT finds many distinctive keypoints on.

    Thresholded band-limited noise at several scales gives blobs with sharp, irregular
    outlines (corners and T-junctions where layers overlap); smooth fine noise adds detail
    inside the blobs. ``family`` changes the look (round blobs vs. blocky patches) so two
    layouts resemble two different places. Scales are in world units, so a texture looks the
    same whatever the texel density of its face.
    """
    scales = (0.9, 0.4, 0.18, 0.08)
    tex = np.zeros(shape)
    for i, scale in enumerate(scales):
        if family % 2 == 1 and i < 3:
            layer = normalise(value_noise(shape, scale * texels_per_unit, rng, smooth=False))
        else:
            layer = value_noise(shape, scale * texels_per_unit, rng)
            layer = (layer > rng.uniform(0.4, 0.6)).astype(float) * 2.0 - 1.0
        tex += layer * rng.uniform(0.6, 1.0)
    tex = normalise(tex) + 0.5 * normalise(value_noise(shape, 0.035 * texels_per_unit, rng))
    return np.clip(0.5 + 0.16 * tex, 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------- layouts


def _quad(
    corner: Sequence[float],
    edge_u: Sequence[float],
    edge_v: Sequence[float],
    texels_per_unit: float,
    family: int,
    tint: np.ndarray,
    rng: np.random.Generator,
) -> Quad:
    """A textured rectangle from a corner and two orthogonal edge vectors."""
    edge_u, edge_v = np.asarray(edge_u, float), np.asarray(edge_v, float)
    size = (float(np.linalg.norm(edge_u)), float(np.linalg.norm(edge_v)))
    shape = (math.ceil(size[1] * texels_per_unit) + 2, math.ceil(size[0] * texels_per_unit) + 2)
    return Quad(
        corner=np.asarray(corner, float),
        u_axis=edge_u / size[0],
        v_axis=edge_v / size[1],
        size=size,
        texture=_make_texture(shape, texels_per_unit, family, rng),
        texels_per_unit=texels_per_unit,
        tint=tint,
    )


def _box(
    center: tuple[float, float],
    half: tuple[float, float],
    z0: float,
    height: float,
    yaw: float,
    family: int,
    palette: np.ndarray,
    rng: np.random.Generator,
) -> list[Quad]:
    """The top and four sides of a box standing on ``z = z0``, rotated by ``yaw`` about z."""
    ex = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    ey = np.array([-math.sin(yaw), math.cos(yaw), 0.0])
    ez = np.array([0.0, 0.0, 1.0])
    c = np.array([center[0], center[1], z0])
    a, b = half
    tint = palette[rng.integers(len(palette))]
    faces = [  # (corner, u edge, v edge); u x v points outwards
        (c + a * ex - b * ey, 2 * b * ey, height * ez),
        (c - a * ex + b * ey, -2 * b * ey, height * ez),
        (c + a * ex + b * ey, -2 * a * ex, height * ez),
        (c - a * ex - b * ey, 2 * a * ex, height * ez),
        (c - a * ex - b * ey + height * ez, 2 * a * ex, 2 * b * ey),
    ]
    return [_quad(corner, eu, ev, 96.0, family, tint, rng) for corner, eu, ev in faces]


def _palette(family: int, rng: np.random.Generator) -> np.ndarray:
    """A few RGB tints per layout: warm for even families, cool for odd ones."""
    base = np.array([1.0, 0.85, 0.7]) if family % 2 == 0 else np.array([0.7, 0.85, 1.0])
    return np.clip(base + rng.uniform(-0.15, 0.15, size=(6, 3)), 0.4, 1.0)


def _place_boxes(count: int, rng: np.random.Generator) -> list[tuple[float, ...]]:
    """Random footprints (x, y, half_x, half_y, height, yaw) that do not overlap."""
    boxes: list[tuple[float, ...]] = []
    for _ in range(400):
        if len(boxes) == count:
            break
        hx, hy = rng.uniform(0.35, 0.85, size=2)
        x, y = rng.uniform(-2.6, 2.6), rng.uniform(-1.8, 2.4)
        radius = math.hypot(hx, hy)
        if all(
            math.hypot(x - o[0], y - o[1]) > radius + math.hypot(o[2], o[3]) + 0.2 for o in boxes
        ):
            boxes.append((x, y, hx, hy, rng.uniform(0.5, 2.2), rng.uniform(0, math.pi / 2)))
    return boxes


def build_geometry(layout: int = 0, seed: int = 0) -> list[Quad]:
    """Ground, walls and boxes of one place; ``layout`` changes arrangement and texture family.

    The back wall stands at ``y = 4.5`` facing the cameras (which sit at negative ``y``), one
    side wall closes the view on the left or right, and 5-7 boxes of different heights (some
    with a smaller box on top) give depth discontinuities that make the scene non-planar.
    """
    rng = np.random.default_rng([seed, layout, 1])
    family = layout
    palette = _palette(family, rng)
    ground_tint = palette[0] * 0.9
    quads = [
        _quad((-12, -12, 0), (24, 0, 0), (0, 24, 0), 64.0, family, ground_tint, rng),
        _quad((-12, 4.5, 0), (24, 0, 0), (0, 0, 6), 64.0, family, palette[1], rng),
    ]
    if layout % 2 == 0:  # left wall at x = -8, facing +x
        quads.append(_quad((-8, -11.5, 0), (0, 16, 0), (0, 0, 6), 64.0, family, palette[2], rng))
    else:  # right wall at x = 8, facing -x
        quads.append(_quad((8, 4.5, 0), (0, -16, 0), (0, 0, 6), 64.0, family, palette[2], rng))
    for x, y, hx, hy, height, yaw in _place_boxes(5 + layout % 3, rng):
        quads += _box((x, y), (hx, hy), 0.0, height, yaw, family, palette, rng)
        if rng.random() < 0.35:
            small = (hx * rng.uniform(0.4, 0.7), hy * rng.uniform(0.4, 0.7))
            quads += _box(
                (x, y), small, height, rng.uniform(0.3, 0.8), yaw + 0.4, family, palette, rng
            )
    return quads
