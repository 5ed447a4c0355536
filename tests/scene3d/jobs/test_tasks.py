"""scene3d.jobs.tasks: a real (small, generated) job run task by task, as Airflow runs it."""

from __future__ import annotations

import json
import uuid
import zipfile

import pytest

from pipeline.errors import IngestError
from scene3d.jobs.paths import job_folder
from scene3d.jobs.tasks import TASKS
from scene3d.settings import Settings
from scene3d.store import JobStore


@pytest.fixture
def new_job(tmp_path):
    settings = Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 's.db'}")
    with JobStore(settings.database_url) as store:
        store.migrate()
        owner = store.create_user("owner", "not-a-real-hash")

        def make(images) -> str:
            job_id = str(uuid.uuid4())
            store.create_job(job_id, owner.id, "synthetic", "scene", preset="fast")
            upload = job_folder(settings, job_id).upload
            upload.parent.mkdir(parents=True)
            with zipfile.ZipFile(upload, "w") as archive:
                for image in images:
                    archive.write(image, image.name)
            return job_id

        yield settings, store, make


@pytest.mark.slow
def test_each_task_records_its_stage_and_the_last_one_the_results(new_job, tmp_path) -> None:
    from pipeline.eval.synthetic import make_collection

    settings, store, make = new_job
    image_dir, _, _ = make_collection(tmp_path / "sample", n_views=6, seed=3)
    job_id = make(sorted(image_dir.iterdir()))
    seen = {}
    for name, task in TASKS.items():
        task(job_id, store, settings)
        job = store.get_job(job_id)
        seen[name] = (job.stage, job.progress)
    assert seen["extract"] == ("extracting", 29)
    assert seen["matching"][0] == "matching" and seen["matching"][1] >= 30
    assert seen["triangulate"][0] == "triangulating"
    assert seen["decimate"][0] == "decimating"
    assert seen["export"] == ("success", 100)
    job = store.get_job(job_id)
    assert (job.n_images, job.n_valid_images, job.registration_rate) == (6, 6, 1.0)
    assert job.preset == "fast" and job.n_points > 0
    run = job_folder(settings, job_id).run
    timings = json.loads(run.root.joinpath("timings.json").read_text())
    assert set(timings) == {"ingest", "drift", "features", "matching", "mapping", "export"}
    assert [c.filename for c in store.get_clusters(job_id)] == [
        f"cluster0_decimated_model0_{job_id[:8]}.ply"
    ]

    # A retried decimate or export task gives the same files and the same one cluster.
    models_before = sorted(p.stat().st_mtime_ns for p in run.models.rglob("*.bin"))
    TASKS["decimate"](job_id, store, settings)
    TASKS["export"](job_id, store, settings)
    assert sorted(p.stat().st_mtime_ns for p in run.models.rglob("*.bin")) == models_before
    assert len(store.get_clusters(job_id)) == 1


def test_a_hostile_upload_fails_extract_with_the_engines_error(new_job) -> None:
    settings, store, make = new_job
    job_id = make([])
    with zipfile.ZipFile(job_folder(settings, job_id).upload, "w") as archive:
        archive.writestr("../escape.png", b"\x89PNG")
    with pytest.raises(IngestError):
        TASKS["extract"](job_id, store, settings)
    assert not (settings.home / "jobs" / "escape.png").exists()
