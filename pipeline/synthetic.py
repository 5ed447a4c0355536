"""Synthetic scenes with exact ground truth, so engine tests need no real photographs.

A scene is a handful of textured rectangles (a ground plane, back/side walls and boxes,
some of them rotated) rendered by vectorised numpy ray casting from known pinhole cameras
placed on an arc around the scene centre. The geometry is deliberately non-planar, so
structure from motion is well-posed, and every face carries a high-frequency, non-repeating
procedural texture attached to the surface (not to the screen), so the same surface point looks
the same from every view and SIFT finds many distinctive, matchable keypoints.

Poses follow COLMAP conventions: world-to-camera ``x = K (R X + t)``, the camera looks along
``+z`` with ``y`` pointing down, and pixel ``(i, j)`` covers ``[i, i+1) x [j, j+1)``, so its centre
is at ``(i + 0.5, j + 0.5)``. Ground truth is written in the Image Matching Challenge 2025 layout
(``train_labels.csv`` and ``train_thresholds.csv``).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import sparse

__all__ = [
    "Quad",
    "SyntheticScene",
    "SyntheticView",
    "build_geometry",
    "depth_map",
    "make_collection",
    "make_noise_image",
    "render_scene",
    "render_view",
    "scene_thresholds",
    "write_imc_ground_truth",
]

BACKGROUND = 0.5
"""Grey level where a ray hits nothing: flat, so it adds no (possibly wrong) keypoints."""
LIGHT_DIR = np.array([0.45, -0.55, 0.70]) / np.linalg.norm([0.45, -0.55, 0.70])
"""Direction towards a distant light; faces with different normals get different brightness."""
AMBIENT = 0.4
"""Share of light every face gets, so faces turned away from the light keep their texture."""
SUPERSAMPLE = 2
"""Rays per pixel along each axis: 2x2 supersampling is cheap and removes most aliasing."""
THRESHOLD_FRACTIONS = (0.0025, 0.005, 0.01, 0.02, 0.05, 0.1)
"""IMC2025 thresholds as fractions of the median camera distance from the scene centre."""
DATASET = "synthetic"
"""Dataset name :func:`make_collection` writes into the ground truth."""
OUTLIER_SCENE = "outliers"
"""Scene label IMC2025 reserves for images that belong to no scene."""


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


@dataclass
class SyntheticScene:
    """Rendered images of one place plus the exact cameras and geometry behind them."""

    image_dir: Path
    views: list[SyntheticView]
    quads: list[Quad] = field(default_factory=list, repr=False)
    """The geometry that was rendered (for depth checks in tests)."""
    width: int = 640
    height: int = 480

    def centers(self) -> np.ndarray:
        """Camera centres (n, 3), ``-R^T t`` for each view."""
        return np.array([view.center for view in self.views]).reshape(-1, 3)


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


def _value_noise(
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


def _normalise(layer: np.ndarray) -> np.ndarray:
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
            layer = _normalise(_value_noise(shape, scale * texels_per_unit, rng, smooth=False))
        else:
            layer = _value_noise(shape, scale * texels_per_unit, rng)
            layer = (layer > rng.uniform(0.4, 0.6)).astype(float) * 2.0 - 1.0
        tex += layer * rng.uniform(0.6, 1.0)
    tex = _normalise(tex) + 0.5 * _normalise(_value_noise(shape, 0.035 * texels_per_unit, rng))
    return np.clip(0.5 + 0.16 * tex, 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------- geometry


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


def _arc_cameras(
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


def render_scene(
    out_dir: Path,
    n_views: int = 12,
    width: int = 640,
    height: int = 480,
    seed: int = 0,
    layout: int = 0,
    prefix: str = "view",
) -> SyntheticScene:
    """Render one scene; ``layout`` picks a different arrangement/texture family so two
    layouts look like two different places (for clustering tests).

    Images are written as ``<prefix>_000.png``... into ``out_dir``; ``seed`` drives textures,
    box placement and camera jitter, so the same arguments give identical pixels.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    quads = build_geometry(layout, seed)
    views = _arc_cameras(n_views, width, height, np.random.default_rng([seed, layout, 2]), prefix)
    for view in views:
        image = Image.fromarray(render_view(quads, view, width, height))
        image.save(out_dir / view.name, compress_level=1)  # fast; size does not matter here
    return SyntheticScene(out_dir, views, quads, width, height)


def make_noise_image(path: Path, width: int = 640, height: int = 480, seed: int = 0) -> None:
    """An unrelated image (pure noise / different texture) to act as an outlier photo.

    Coloured multi-scale noise: plenty of keypoints, none of which can be verified
    geometrically against the scenes.
    """
    rng = np.random.default_rng([seed, 99])
    channels = []
    for _ in range(3):
        layer = sum(
            w * _normalise(_value_noise((height, width), cell, rng))
            for w, cell in ((1.0, 60.0), (0.6, 15.0), (0.4, 4.0), (0.2, 1.0))
        )
        channels.append(np.clip(0.5 + 0.15 * layer, 0, 1))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    rgb = np.round(np.stack(channels, axis=-1) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(path, compress_level=1)


# --------------------------------------------------------------------------- ground truth


def _join(values: Iterable[float]) -> str:
    """IMC number list: full precision, ``;``-separated, ``nan`` for unknown values."""
    return ";".join(repr(float(v)) for v in values)


def scene_thresholds(scene: SyntheticScene) -> list[float]:
    """IMC thresholds: median camera distance from the centroid of the cameras, in fractions."""
    centers = scene.centers()
    median = float(np.median(np.linalg.norm(centers - centers.mean(axis=0), axis=1)))
    return [median * fraction for fraction in THRESHOLD_FRACTIONS]


def write_imc_ground_truth(
    scenes: dict[str, SyntheticScene],
    dataset: str,
    labels_csv: Path,
    thresholds_csv: Path,
    outliers: Sequence[str] = (),
) -> None:
    """Write train_labels.csv rows (dataset,scene,image,rotation_matrix,translation_vector; 9 and 3
    numbers ';'-joined, world-to-camera) for each scene key, plus rows labelled scene `outliers`
    (nan poses) for the given outlier image names, and train_thresholds.csv with thresholds =
    median camera distance from the scene centre times 0.25, 0.5, 1, 2, 5, 10 percent.

    The scene centre is the centroid of the scene's camera centres. Files are overwritten.
    """
    labels_csv, thresholds_csv = Path(labels_csv), Path(thresholds_csv)
    for path in (labels_csv, thresholds_csv):
        path.parent.mkdir(parents=True, exist_ok=True)
    with labels_csv.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["dataset", "scene", "image", "rotation_matrix", "translation_vector"])
        for scene_name, scene in scenes.items():
            for view in scene.views:
                writer.writerow(
                    [dataset, scene_name, view.name, _join(view.R.ravel()), _join(view.t)]
                )
        for name in outliers:
            writer.writerow(
                [dataset, OUTLIER_SCENE, name, _join([math.nan] * 9), _join([math.nan] * 3)]
            )
    with thresholds_csv.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["dataset", "scene", "thresholds"])
        for scene_name, scene in scenes.items():
            values = ";".join(f"{value:.5g}" for value in scene_thresholds(scene))
            writer.writerow([dataset, scene_name, values])


def make_collection(
    out_dir: Path,
    n_views: int = 12,
    n_scenes: int = 1,
    n_outliers: int = 0,
    seed: int = 0,
    width: int = 640,
    height: int = 480,
) -> tuple[Path, Path, Path]:
    """A ready-made IMC2025-style benchmark: ``(image_dir, labels_csv, thresholds_csv)``.

    Images of every scene (``scene0_view_000.png``, ``scene1_view_000.png``...) and the
    outlier photos (``outlier_000.png``...) share ONE flat folder
    ``out_dir/train/synthetic``, as in the IMC layout; scene ``i`` uses layout ``i`` so scenes
    look like different places. Ground truth goes to ``out_dir/train_labels.csv`` and
    ``out_dir/train_thresholds.csv`` with dataset ``synthetic``.
    """
    out_dir = Path(out_dir)
    image_dir = out_dir / "train" / DATASET
    scenes = {
        f"scene{i}": render_scene(
            image_dir, n_views, width, height, seed=seed, layout=i, prefix=f"scene{i}_view"
        )
        for i in range(n_scenes)
    }
    outliers = []
    for i in range(n_outliers):
        name = f"outlier_{i:03d}.png"
        make_noise_image(image_dir / name, width, height, seed=seed * 1000 + i)
        outliers.append(name)
    labels_csv, thresholds_csv = out_dir / "train_labels.csv", out_dir / "train_thresholds.csv"
    write_imc_ground_truth(scenes, DATASET, labels_csv, thresholds_csv, outliers)
    return image_dir, labels_csv, thresholds_csv
