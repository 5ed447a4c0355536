"""Job stages, in the order a job goes through them.

A job only ever moves forward through :data:`PIPELINE_ORDER`; ``failed`` can be reached
from any stage that is not terminal. Kept free of SQLAlchemy so the API and the Airflow
tasks can import the names without pulling in the database layer.
"""

from __future__ import annotations

STAGES: tuple[str, ...] = (
    "queued",
    "extracting",
    "matching",
    "triangulating",
    "decimating",
    "success",
    "failed",
)
"""Every stage a job can be in (the CHECK constraint of ``jobs.stage``)."""

PIPELINE_ORDER: tuple[str, ...] = STAGES[:-1]
"""The forward order ``queued < extracting < ... < success``; ``failed`` sits outside it."""

STAGE_PROGRESS: dict[str, int] = {
    "queued": 0,
    "extracting": 10,
    "matching": 30,
    "triangulating": 70,
    "decimating": 85,
    "success": 100,
    "failed": 0,
}
"""Progress (percent) a job shows when it enters each stage."""

ACTIVE_STAGES: tuple[str, ...] = ("extracting", "matching", "triangulating", "decimating")
"""Stages of a job that is running (the ``active jobs`` gauge)."""

TERMINAL_STAGES: tuple[str, ...] = ("success", "failed")
"""Stages a job never leaves (but for :meth:`~scene3d.store.JobStore.reopen`)."""

START_FAILED = "could not start"
"""How the error of a job whose trigger failed begins; such a job may be reopened."""

DRIFT_SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "unknown")
"""Allowed values of ``jobs.drift_severity``."""

ROLES: tuple[str, ...] = ("admin", "user")
"""Allowed values of ``users.role``."""
