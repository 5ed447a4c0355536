"""Progress reporting and cancellation shared by every pipeline step."""

from __future__ import annotations

import threading
from typing import Protocol

from pipeline.errors import Cancelled


class ProgressCallback(Protocol):
    """Receives ``(stage, fraction, message)``; ``fraction`` runs 0..1 within the stage."""

    def __call__(self, stage: str, fraction: float, message: str) -> None: ...


def null_progress(stage: str, fraction: float, message: str) -> None:
    """Default callback: report nothing."""


class CancelToken:
    """Thread-safe flag checked between units of work (images, pairs, steps)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if :meth:`cancel` was called."""
        if self._event.is_set():
            raise Cancelled("work was cancelled")
