"""The model worker: loads the current model (a reconstruction preset) and does the
heavy work. The API only asks it whether it is ready and on which device.

:class:`LocalModelWorker` lives in the API process; the Ray Serve deployment wraps
the same class so ``/ready`` reports the device of the process that does the work.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Protocol

from pipeline.config import PipelineConfig
from pipeline.presets import load_preset


@dataclass(frozen=True)
class WorkerStatus:
    ready: bool
    device: str
    reason: str = ""


class ModelWorker(Protocol):
    def status(self) -> WorkerStatus: ...


def describe_device() -> str:
    """GPU name and memory when CUDA is usable, else the CPU core count."""
    try:
        import torch

        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            return f"{props.name} ({props.total_memory / 1024**3:.1f} GB)"
    except ImportError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"cpu ({cores} cores)"


class LocalModelWorker:
    """Loads the preset in a background thread; not ready until that finished."""

    def __init__(self, preset: str) -> None:
        self.preset = preset
        self.config: PipelineConfig | None = None
        self._error: str | None = None
        self._device = "unknown"
        self._loaded = threading.Event()
        threading.Thread(target=self._load, name="model-loader", daemon=True).start()

    def _load(self) -> None:
        try:
            self.config = load_preset(self.preset)
            self._device = describe_device()
        except Exception as exc:  # reported through /ready, never raised into requests
            self._error = f"model {self.preset!r} failed to load: {exc}"
        finally:
            self._loaded.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._loaded.wait(timeout)

    def status(self) -> WorkerStatus:
        if not self._loaded.is_set():
            return WorkerStatus(False, self._device, "model worker is still loading the model")
        if self._error:
            return WorkerStatus(False, self._device, self._error)
        return WorkerStatus(True, self._device)
