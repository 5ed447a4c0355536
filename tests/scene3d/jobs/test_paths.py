"""scene3d.jobs.paths: a job's files stay inside its own folder."""

from __future__ import annotations

from scene3d.jobs.paths import job_folder
from scene3d.settings import Settings


def test_the_upload_and_the_engines_run_folder_live_under_the_job(tmp_path) -> None:
    folder = job_folder(Settings(home=tmp_path), "0d1e6f5a-0000-4000-8000-000000000000")
    root = tmp_path / "jobs" / "0d1e6f5a-0000-4000-8000-000000000000"
    assert folder.root == root
    assert folder.upload == root / "upload.zip"
    assert folder.run.root == root / "work"
    assert folder.run.submission == root / "work" / "submission.csv"
    assert folder.timings == root / "work" / "timings.json"
