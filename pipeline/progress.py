"""Progress reporting and cancellation shared by every pipeline step.

The progress contract: every step calls ``progress(step, fraction, message)`` where

* ``step`` is the engine's own name of the step that reports, one of
  :data:`pipeline.reconstruct.STEPS` (``ingest``, ``features``, ``pairs``, ``matching``,
  ``mapping``, ``export``), never a name of the platform's API;
* ``fraction`` is how far *that step* has got, from 0 to 1, never decreasing within one
  run of the step (a step may report 1.0 more than once, e.g. a second SIFT pass);
* ``message`` is a short human-readable line (``"matched 96/630 pairs"``).

A step that resumes from its files may report nothing. Callers map steps onto whatever they
show (the CLI's progress bar, the platform's job stages); the engine never does.
"""

from __future__ import annotations

import threading
from typing import Protocol

from pipeline.errors import Cancelled


class ProgressCallback(Protocol):
    """Receives ``(step, fraction, message)``; ``fraction`` runs 0..1 within the step."""

    def __call__(self, step: str, fraction: float, message: str) -> None: ...


def null_progress(step: str, fraction: float, message: str) -> None:
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
