"""Request and response bodies, exactly as ``api_reference.rst`` documents them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Stage = Literal[
    "queued", "extracting", "matching", "triangulating", "decimating", "success", "failed"
]
Severity = Literal["low", "medium", "high", "unknown"]


class ErrorPublic(BaseModel):
    detail: str = Field(examples=["Human-readable error message"])


class TokenCreate(BaseModel):
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)


class TokenPublic(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class HealthPublic(BaseModel):
    status: Literal["ok"] = "ok"
    version: str
    timestamp: float


class ReadyPublic(BaseModel):
    status: Literal["ready"] = "ready"
    device: str
    model: str = ""
    """The model served to new jobs: ``scene3d-reconstruction``, or ``preset:<name>``."""
    model_version: str | None = None
    """The registered version served (the ``champion``'s when last looked); null for a preset."""
    note: str | None = None
    """Set when the served model may be out of date, e.g. MLflow does not answer."""


class UploadPublic(BaseModel):
    job_id: str
    message: str = "Pipeline started."


class JobPublic(BaseModel):
    job_id: str
    stage: Stage
    status: Stage
    progress: int = Field(ge=0, le=100)
    message: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    n_images: int
    n_points: int
    registration_rate: float | None
    error: str | None
    download_url: str | None
    has_drift: bool
    drift_severity: Severity
    model_name: str | None = None
    """The model the job runs with: ``scene3d-reconstruction``, or ``preset:<name>``."""
    model_version: str | None = None
    """Its registered version; null for a preset."""


class JobSummaryPublic(JobPublic):
    """A job in a list: its status and whose it is."""

    owner: str
    """The owner's user name."""


class JobsPublic(BaseModel):
    """One page of jobs, newest first."""

    jobs: list[JobSummaryPublic]
    total: int
    """How many jobs match the filters in all."""
    limit: int
    offset: int


class ClusterPublic(BaseModel):
    id: int
    name: str
    num_points3D: int
    filename: str


class ClustersPublic(BaseModel):
    clusters: list[ClusterPublic]


class DriftCheckPublic(BaseModel):
    """One check of a drift report: a feature's KS test, or the descriptors' MMD."""

    method: str
    """``ks p-value``, ``mmd``, or ``extreme shift (few images)`` below the small-sample size."""
    score: float
    """The test's number: a p-value (drift below the threshold) or a distance (above)."""
    threshold: float
    drift_detected: bool


class DriftReportPublic(BaseModel):
    """Evidently's verdict on a batch of photos against the reference profile."""

    drift_detected: bool
    severity: Severity
    """``unknown`` where there is no reference profile or no readable photo."""
    share_drifted: float = 0.0
    """Share of the checks that drifted; severity follows from it (docs/drift.md)."""
    checks: dict[str, DriftCheckPublic] = Field(default_factory=dict)
    n_images: int | None = None
    reference: str | None = None
    """The reference profile the photos were compared with (name and size)."""
    reason: str | None = None
    """Why nothing could be judged, where severity is ``unknown``."""


class InsightsPublic(BaseModel):
    registration_rate: float | None
    n_points: int
    has_drift: bool
    drift_severity: Severity
    drift_report: DriftReportPublic
    recommendation: str
    model_name: str | None = None
    model_version: str | None = None


class RetrainPublic(BaseModel):
    status: Literal["triggered"] = "triggered"
    run_id: str | None = None
