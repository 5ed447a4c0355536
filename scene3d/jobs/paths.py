"""Where a job's files live: only the job's own tasks write under its folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.layout import RunPaths
from scene3d.settings import Settings


@dataclass(frozen=True)
class JobFolder:
    """A job's folder: the upload as received and the engine's run folder beside it."""

    root: Path

    @property
    def upload(self) -> Path:
        return self.root / "upload.zip"

    @property
    def model(self) -> Path:
        """The model the job runs with (a :class:`~scene3d.served.ServedModel`), pinned at
        upload: every task reads the same configuration, whatever is served later."""
        return self.root / "model.json"

    @property
    def run(self) -> RunPaths:
        """The engine's own layout of the work folder (images, models, PLY, CSV, ...)."""
        return RunPaths(self.root / "work")

    @property
    def drift(self) -> Path:
        """The job's drift check: ``features.json``, ``report.json``, Evidently's
        ``report.html``."""
        return self.root / "drift"

    @property
    def timings(self) -> Path:
        """Wall seconds of each task, replaced (never added to) when a task is retried."""
        return self.run.root / "timings.json"


def job_folder(settings: Settings, job_id: str) -> JobFolder:
    return JobFolder(settings.job_dir(job_id))


def spool_dir(settings: Settings) -> Path:
    """Where uploads are streamed before they become a job (or are refused); nothing in
    it outlives its request, so start-up empties it (:func:`scene3d.runtime.prepare`)."""
    return settings.jobs_dir / ".incoming"
