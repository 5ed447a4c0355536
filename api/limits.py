"""Bounded thread pools for the work that can take long, kept apart from the pool that every
sync route and the auth dependency share (Starlette's default, 40 threads).

Without them, a few dozen drift checks at once (seconds of image statistics each), or a slow
Airflow (tens of seconds per trigger with its retries), take every shared thread and even
``/health`` and ``/auth/token`` stop answering.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import HTTPException, status

T = TypeVar("T")

BUSY_RETRY_AFTER_SECONDS = 10
ORCHESTRATOR_SLOTS = 8
"""Calls to Airflow at once per API process; more wait (asynchronously, holding no thread)."""


class WorkPool:
    """At most ``slots`` calls at once in threads of their own. ``reject_when_full``: a call
    that finds every slot taken is answered 503 with ``Retry-After`` at once instead of
    queueing (heavy client work); otherwise it waits its turn without holding a thread."""

    def __init__(self, slots: int, what: str, *, reject_when_full: bool) -> None:
        if slots < 1:
            raise ValueError(f"a work pool needs at least one slot, got {slots}")
        # Admission and threads are two limiters of one size: a call takes its slot
        # atomically (no await between looking and taking), then its thread never waits.
        self.slots = anyio.CapacityLimiter(slots)
        self.threads = anyio.CapacityLimiter(slots)
        self.what = what
        self.reject_when_full = reject_when_full

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        call = functools.partial(fn, *args, **kwargs)
        if not self.reject_when_full:
            async with self.slots:
                return await anyio.to_thread.run_sync(call, limiter=self.threads)
        try:
            self.slots.acquire_nowait()
        except anyio.WouldBlock:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                f"the server is busy with other {self.what}; try again shortly",
                headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)},
            ) from None
        try:
            return await anyio.to_thread.run_sync(call, limiter=self.threads)
        finally:
            self.slots.release()
