"""The model a job runs with: a registered version, or a preset straight from code.

A :class:`ServedModel` is small and plain (name, version, the full engine configuration), so
the model worker can hand it over a Serve handle and the API can pin it into a new job's
folder (``model.json``): every task of that job then reads the same configuration, whatever
the worker serves later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import PipelineConfig
from pipeline.presets import load_preset

PRESET_PREFIX = "preset:"
"""Name of a model that is a preset from the installed code, not a registered version."""


def config_from_artifacts(config_file: Path, weights: Path | None) -> PipelineConfig:
    """A version's configuration from its ``config.json``; its learned extractor loads the
    version's own weight copies (``weights``) where it has them."""
    data = json.loads(Path(config_file).read_text())
    if weights is not None:
        data["features"]["weights_dir"] = str(weights)
    return PipelineConfig.from_dict(data)


@dataclass(frozen=True)
class ServedModel:
    name: str
    """The registered model's name, or ``preset:<name>`` without a registry."""
    version: str | None
    """The registered version's number; None for a preset."""
    config: PipelineConfig
    """Every engine setting the model stands for (not a preset name)."""

    @classmethod
    def from_preset(cls, preset: str) -> ServedModel:
        return cls(f"{PRESET_PREFIX}{preset}", None, load_preset(preset))

    @property
    def label(self) -> str:
        """``scene3d-reconstruction/3`` or ``preset:sift``, for messages."""
        return f"{self.name}/{self.version}" if self.version else self.name

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "config": self.config.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServedModel:
        return cls(data["name"], data["version"], PipelineConfig.from_dict(data["config"]))

    def write(self, path: Path) -> None:
        """Write ``path`` whole or not at all (a crash leaves no half file)."""
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2))
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> ServedModel:
        return cls.from_dict(json.loads(path.read_text()))
