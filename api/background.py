"""Work the API does on its own, while it runs: reconciling jobs with Airflow
(:mod:`scene3d.reconcile`) every ``SCENE3D_RECONCILE_INTERVAL_SECONDS``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.deps import AppContext
from scene3d.reconcile import reconcile

log = logging.getLogger(__name__)


async def reconcile_forever(ctx: AppContext, interval: float) -> None:
    """Reconcile every ``interval`` seconds; a pass that fails (Airflow or the store away)
    is logged and the next one tries again."""
    while True:
        await asyncio.sleep(interval)
        try:
            await ctx.orchestrator_calls.run(reconcile, ctx.orchestrator, ctx.store)
        except Exception:
            log.warning("reconciling jobs with Airflow failed; trying again later", exc_info=True)


def lifespan_for(ctx: AppContext):
    """The app's lifespan: the reconciler runs where the orchestrator keeps runs of its own
    to compare with (Airflow: it answers ``dag_run_state``)."""
    interval = ctx.settings.reconcile_interval_seconds

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = None
        if interval > 0 and hasattr(ctx.orchestrator, "dag_run_state"):
            task = asyncio.create_task(reconcile_forever(ctx, interval))
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    return lifespan
