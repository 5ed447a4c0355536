"""scene3d.jobs.progress: engine steps become the API's stages and percent."""

from __future__ import annotations

import uuid

import pytest

from pipeline.errors import Cancelled, ReconstructionError
from scene3d.jobs.progress import STEP_STAGES, ProgressWriter, readable_error, step_percent
from scene3d.store import STAGE_PROGRESS, JobStore

JOB = str(uuid.uuid4())


def test_every_engine_step_has_a_stage() -> None:
    from pipeline.reconstruct import STEPS

    assert set(STEP_STAGES) == set(STEPS)


@pytest.mark.parametrize(
    ("step", "fraction", "expected"),
    [
        ("ingest", 0.0, ("extracting", 10)),
        ("ingest", 1.0, ("extracting", 29)),
        ("features", 0.0, ("matching", 30)),
        ("features", 1.0, ("matching", 43)),
        ("matching", 1.0, ("matching", 69)),
        ("mapping", 0.5, ("triangulating", 77)),
        ("export", 1.0, ("decimating", 99)),
        ("export", 7.0, ("decimating", 99)),  # out-of-range fractions are clamped
    ],
)
def test_step_percent_stays_inside_its_stage(step, fraction, expected) -> None:
    assert step_percent(step, fraction) == expected
    stage, percent = expected
    assert STAGE_PROGRESS[stage] <= percent < 100


@pytest.fixture
def store(tmp_path):
    with JobStore(f"sqlite:///{tmp_path / 's.db'}") as store:
        store.migrate()
        owner = store.create_user("owner", "not-a-real-hash")
        store.create_job(JOB, owner.id, "d", "s")
        yield store


def test_writer_records_stage_percent_and_message(store) -> None:
    write = ProgressWriter(store, JOB)
    write("features", 0.0, "image 1/10")
    job = store.get_job(JOB)
    assert (job.stage, job.progress) == ("matching", 30)
    assert job.message == "Extracting and matching features: image 1/10"
    write("ingest", 0.5, "")  # a late update never moves the job backwards
    assert store.get_job(JOB).stage == "matching"
    write("not-a-step", 0.5, "ignored")
    assert store.get_job(JOB).progress == 30


def test_readable_errors_never_show_a_traceback() -> None:
    assert readable_error(ReconstructionError("nothing matched")) == "nothing matched"
    assert readable_error(Cancelled("stop")) == "cancelled"
    assert readable_error(KeyError("x")) == "internal error (KeyError); see the server log"

    class RayError(Exception):
        cause = ReconstructionError("from the worker")

    assert readable_error(RayError()) == "from the worker"
