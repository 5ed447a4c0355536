"""Named presets, merged over the defaults of :class:`pipeline.config.PipelineConfig`.

A preset only lists what differs from the defaults (hloc style), so it reads as a
short recipe and can be logged or registered as a model version as it is.
"""

from __future__ import annotations

from typing import Any

from pipeline.config import PipelineConfig, merge_config

DEFAULT_PRESET = "sift"

PRESETS: dict[str, dict[str, Any]] = {
    # Weight-free default: SIFT, exhaustive pairs, incremental mapping.
    "sift": {},
    # Same features with the global (GLOMAP) mapper: faster on large scenes.
    "sift-global": {"mapping": {"mapper": "global"}},
    # Plain COLMAP as the benchmark baseline runs it: full-size images, no scene split.
    "colmap": {"features": {"max_image_size": -1}},
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
