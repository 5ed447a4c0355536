"""Plain, immutable copies of stored rows.

The store hands these out instead of ORM objects so callers (API handlers, Airflow tasks)
never hold a session, never trigger lazy loads after it closed, and can pass records
between threads freely.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class UserRecord:
    """One row of ``users``."""

    id: int
    username: str
    password_hash: str
    role: str
    created_at: float
    token_stamp: str = ""

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One row of ``jobs``; times are Unix epoch seconds."""

    id: str
    owner_id: int
    dataset_name: str
    scene_name: str
    stage: str
    progress: int
    message: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    n_images: int
    n_valid_images: int
    n_points: int
    registration_rate: float | None
    error: str | None
    has_drift: bool
    drift_severity: str
    drift_report: dict[str, Any] | None
    model_name: str | None
    """The model the job runs with: a registered model, or ``preset:<name>``."""
    model_version: str | None
    """Its registered version; None for a preset."""
    preset: str | None
    timings: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class ClusterRecord:
    """One reconstructed model (cluster) of a job; ``cluster_id`` is 0-based per job."""

    job_id: str
    cluster_id: int
    name: str
    num_points3D: int
    num_images: int
    filename: str
    raw_filename: str | None
    mean_reprojection_error: float | None
    mean_track_length: float | None
