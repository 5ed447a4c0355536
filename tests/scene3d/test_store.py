"""The job store on SQLite and on a real PostgreSQL, with the same tests.

PostgreSQL comes from ``SCENE3D_TEST_PG_URL`` (default: the local server, database
``test``); its variant is skipped, with the reason, when the server cannot be reached.
Each PostgreSQL test runs in a schema of its own, named after this session's random token
and selected through the connection's ``search_path``; the schema is dropped after the
test and any leftovers of this session at its end, so parallel runs never meet.
"""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from scene3d.store import (
    ACTIVE_STAGES,
    PIPELINE_ORDER,
    STAGES,
    JobExistsError,
    JobStore,
    LastAdminError,
    UnknownJobError,
    UnknownUserError,
    UserExistsError,
)
from scene3d.store.models import Base

PG_URL = os.environ.get("SCENE3D_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@dataclass
class PgServer:
    engine: Engine
    prefix: str
    counter: itertools.count

    def new_schema(self) -> tuple[str, str]:
        """Create an empty schema; return (name, URL whose search_path selects it)."""
        name = f"{self.prefix}{next(self.counter)}"
        with self.engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
        url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={name}"})
        return name, url.render_as_string(hide_password=False)

    def drop_schema(self, name: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    engine = create_engine(PG_URL, connect_args={"connect_timeout": 3}, pool_pre_ping=True)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0]
        pytest.skip(f"PostgreSQL unreachable at {make_url(PG_URL)!r} ({reason})")
    server = PgServer(engine, f"scene3d_test_{uuid.uuid4().hex[:10]}_", itertools.count())
    yield server
    with engine.begin() as conn:  # whatever a failed teardown left behind
        names = conn.execute(
            text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p"),
            {"p": server.prefix + "%"},
        ).scalars()
        for name in list(names):
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """An empty database: a fresh SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store' / 'scene3d.db'}"
        return
    server: PgServer = request.getfixturevalue("pg_server")
    name, url = server.new_schema()
    try:
        yield url
    finally:
        server.drop_schema(name)


class FakeClock:
    """Epoch seconds that advance by one per reading, so stamps are predictable."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            self.now += 1.0
            return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(store_url: str, clock: FakeClock) -> Iterator[JobStore]:
    s = JobStore(store_url, clock=clock)
    s.migrate()
    yield s
    s.close()


def new_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def owner(store: JobStore) -> int:
    return store.create_user("owner", "hash-o").id


# --- schema ----------------------------------------------------------------------------------


def test_migrate_twice_is_harmless_and_data_survives(store_url: str) -> None:
    with JobStore(store_url) as s:
        s.migrate()
        s.create_user("alice", "h")
        s.migrate()
        assert [u.username for u in s.list_users()] == ["alice"]
        with s._engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [
                ("0001",)
            ]


def test_migrations_create_exactly_the_models(store: JobStore) -> None:
    with store._engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_postgres_tables_live_in_the_test_schema(pg_server: PgServer) -> None:
    name, url = pg_server.new_schema()
    try:
        with JobStore(url) as s:
            s.migrate()
            with s._engine.connect() as conn:
                assert conn.execute(text("SELECT current_schema()")).scalar_one() == name
                holders = conn.execute(
                    text(
                        "SELECT DISTINCT table_schema FROM information_schema.tables"
                        " WHERE table_name IN ('users', 'jobs', 'clusters', 'alembic_version')"
                        " AND table_schema IN (:name, 'public')"
                    ),
                    {"name": name},
                ).scalars()
                assert list(holders) == [name]
    finally:
        pg_server.drop_schema(name)


def test_two_processes_migrating_together(store_url: str) -> None:
    code = "import sys; from scene3d.store import JobStore; JobStore(sys.argv[1]).migrate()"
    procs = [subprocess.Popen([sys.executable, "-c", code, store_url]) for _ in range(2)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    with JobStore(store_url) as s:
        s.migrate()
        assert s.list_users() == []


def test_reopened_store_sees_the_data(store_url: str) -> None:
    with JobStore(store_url) as first:
        first.migrate()
        user = first.create_user("alice", "h", role="admin")
        job = first.create_job(new_id(), user.id, "ds", "scene")
        first.replace_clusters(job.id, [_cluster(0)])
    with JobStore(store_url) as second:
        second.migrate()
        assert second.get_user("alice") == user
        assert second.get_job(job.id) == job
        assert len(second.get_clusters(job.id)) == 1


# --- users -----------------------------------------------------------------------------------


def test_user_crud(store: JobStore) -> None:
    alice = store.create_user("alice", "h1", role="admin")
    bob = store.create_user("bob", "h2")
    assert alice.role == "admin" and alice.is_admin and bob.role == "user"
    assert store.get_user("alice") == alice
    assert store.get_user_by_id(bob.id) == bob
    assert store.get_user("nobody") is None and store.get_user_by_id(9999) is None
    assert [u.username for u in store.list_users()] == ["alice", "bob"]
    assert store.count_admins() == 1

    assert store.set_password_hash("bob", "h3") is True
    assert store.get_user("bob").password_hash == "h3"
    assert store.set_password_hash("nobody", "h") is False

    with pytest.raises(UserExistsError):
        store.create_user("alice", "other")
    with pytest.raises(ValueError):
        store.create_user("carol", "h", role="root")
    with pytest.raises(ValueError):
        store.create_user(" carol", "h")

    assert store.delete_user("bob") is True
    assert store.delete_user("bob") is False
    assert [u.username for u in store.list_users()] == ["alice"]


def test_last_admin_cannot_be_deleted(store: JobStore) -> None:
    store.create_user("root", "h", role="admin")
    with pytest.raises(LastAdminError):
        store.delete_user("root")
    store.create_user("root2", "h", role="admin")
    assert store.delete_user("root") is True
    with pytest.raises(LastAdminError):
        store.delete_user("root2")
    assert store.count_admins() == 1


# --- jobs ------------------------------------------------------------------------------------


def test_create_get_and_list_jobs_by_owner(store: JobStore) -> None:
    a = store.create_user("a", "h").id
    b = store.create_user("b", "h").id
    j1 = store.create_job(new_id(), a, "ds1", "s1", preset="sift", model_version="v1")
    j2 = store.create_job(new_id(), a, "ds2", "s2")
    j3 = store.create_job(new_id(), b, "ds3", "s3")
    assert j1.stage == "queued" and j1.progress == 0 and j1.message == ""
    assert j1.started_at is None and j1.finished_at is None
    assert (j1.preset, j1.model_version, j1.has_drift, j1.drift_severity) == (
        "sift",
        "v1",
        False,
        "low",
    )
    assert store.get_job(j1.id) == j1
    assert store.get_job(new_id()) is None
    assert [j.id for j in store.list_jobs(owner_id=a)] == [j2.id, j1.id]  # newest first
    assert [j.id for j in store.list_jobs(owner_id=b)] == [j3.id]
    assert len(store.list_jobs()) == 3

    with pytest.raises(JobExistsError):
        store.create_job(j1.id, a, "x", "y")
    with pytest.raises(UnknownUserError):
        store.create_job(new_id(), 9999, "x", "y")
    with pytest.raises(ValueError):
        store.create_job("../../etc", a, "x", "y")

    assert store.delete_job(j1.id) is True
    assert store.delete_job(j1.id) is False


def test_progress_is_monotonic_and_stamped(store: JobStore, owner: int) -> None:
    job = store.create_job(new_id(), owner, "ds", "s")
    assert store.update_progress(job.id, "queued", 0, "waiting") is True
    assert store.get_job(job.id).started_at is None

    assert store.update_progress(job.id, "extracting", 20, "features", n_images=12) is True
    started = store.get_job(job.id).started_at
    assert started is not None

    assert store.update_progress(job.id, "extracting", 10, "lower") is False  # same stage, lower
    assert store.update_progress(job.id, "queued", 0, "back") is False  # earlier stage
    assert store.update_progress(job.id, "extracting", 20, "same, new message") is True
    assert store.update_progress(job.id, "matching", 5, "new stage may start low") is True
    assert store.update_progress(job.id, "extracting", 99, "back") is False

    current = store.get_job(job.id)
    assert (current.stage, current.progress, current.message) == (
        "matching",
        5,
        "new stage may start low",
    )
    assert current.started_at == started and current.n_images == 12

    assert store.update_progress(
        job.id,
        "success",
        100,
        "done",
        n_points=500,
        registration_rate=0.75,
        timings={"total": 3.5},
        preset="sift",
        model_version="v2",
        n_valid_images=10,
    )
    done = store.get_job(job.id)
    assert done.stage == "success" and done.finished_at is not None
    assert done.finished_at > done.started_at == started
    assert (done.n_points, done.registration_rate, done.timings) == (500, 0.75, {"total": 3.5})
    assert (done.n_images, done.n_valid_images, done.model_version) == (12, 10, "v2")

    # terminal stays terminal
    assert store.update_progress(job.id, "success", 100, "again") is False
    assert store.update_progress(job.id, "decimating", 90, "back") is False
    assert store.mark_failed(job.id, "late failure") is False
    assert store.get_job(job.id) == done


def test_update_progress_refuses_bad_input(store: JobStore, owner: int) -> None:
    job = store.create_job(new_id(), owner, "ds", "s")
    with pytest.raises(ValueError, match="mark_failed"):
        store.update_progress(job.id, "failed", 0, "x")
    with pytest.raises(ValueError):
        store.update_progress(job.id, "bogus", 0, "x")
    with pytest.raises(ValueError):
        store.update_progress(job.id, "matching", 101, "x")
    with pytest.raises(TypeError):
        store.update_progress(job.id, "matching", 40, "x", owner_id=5)
    assert store.update_progress(new_id(), "matching", 40, "unknown job") is False


def test_mark_failed(store: JobStore, owner: int) -> None:
    job = store.create_job(new_id(), owner, "ds", "s")
    store.update_progress(job.id, "triangulating", 75, "mapping")
    assert store.mark_failed(job.id, "no model\ntraceback details") is True
    failed = store.get_job(job.id)
    assert (failed.stage, failed.progress, failed.message) == ("failed", 0, "no model")
    assert failed.error == "no model\ntraceback details" and failed.finished_at is not None
    assert store.mark_failed(job.id, "twice") is False
    assert store.update_progress(job.id, "success", 100, "too late") is False
    assert store.get_job(job.id) == failed
    assert store.mark_failed(new_id(), "unknown") is False


def test_concurrent_writers_never_move_a_job_backwards(store: JobStore, owner: int) -> None:
    job = store.create_job(new_id(), owner, "ds", "s")
    n_threads, n_updates = 6, 25
    attempts: list[tuple[str, int]] = []
    seen: list[tuple[int, int]] = []
    start = threading.Barrier(n_threads + 1)
    done = threading.Event()
    errors: list[BaseException] = []
    stages = PIPELINE_ORDER[:-1]  # success would freeze the job early

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            start.wait()
            for _ in range(n_updates):
                stage, progress = rng.choice(stages), rng.randint(0, 100)
                attempts.append((stage, progress))
                store.update_progress(job.id, stage, progress, f"{stage} {progress}")
        except BaseException as exc:
            errors.append(exc)

    def watcher() -> None:
        start.wait()
        while not done.is_set():
            j = store.get_job(job.id)
            seen.append((PIPELINE_ORDER.index(j.stage), j.progress))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(n_threads)]
    observer = threading.Thread(target=watcher)
    for t in [*threads, observer]:
        t.start()
    for t in threads:
        t.join(timeout=60)
    done.set()
    observer.join(timeout=60)
    assert not errors

    final = store.get_job(job.id)
    top = max(attempts, key=lambda a: PIPELINE_ORDER.index(a[0]))[0]
    assert final.stage == top
    assert final.progress == max(p for s, p in attempts if s == top)
    assert final.message == f"{final.stage} {final.progress}"
    assert seen == sorted(seen), "a reader saw the job move backwards"


# --- drift and clusters ----------------------------------------------------------------------


def test_set_drift_stores_a_json_report(store: JobStore, owner: int) -> None:
    job = store.create_job(new_id(), owner, "ds", "s")
    report = {"drift_detected": True, "psi": np.float64(0.4), "n": np.int64(3), "x": float("nan")}
    assert store.set_drift(job.id, True, "high", report) is True
    stored = store.get_job(job.id)
    assert stored.has_drift is True and stored.drift_severity == "high"
    assert stored.drift_report == {"drift_detected": True, "psi": 0.4, "n": 3, "x": None}
    with pytest.raises(ValueError):
        store.set_drift(job.id, True, "extreme", {})
    assert store.set_drift(new_id(), False, "low", None) is False


def _cluster(i: int, **extra: object) -> dict:
    return {
        "cluster_id": i,
        "name": f"cluster_{i}",
        "num_points3D": 100 * (i + 1),
        "num_images": 10 + i,
        "filename": f"cluster_{i}.ply",
        "raw_filename": f"cluster_{i}_raw.ply",
        "mean_reprojection_error": 0.5,
        "mean_track_length": 3.2,
        **extra,
    }


def test_replace_clusters_is_idempotent(store: JobStore, owner: int) -> None:
    job = store.create_job(new_id(), owner, "ds", "s")
    clusters = [_cluster(2), _cluster(0), _cluster(1)]
    store.replace_clusters(job.id, clusters)
    store.replace_clusters(job.id, clusters)  # a retried task
    got = store.get_clusters(job.id)
    assert [c.cluster_id for c in got] == [0, 1, 2]
    assert (got[1].name, got[1].num_points3D, got[1].num_images) == ("cluster_1", 200, 11)
    assert got[1].raw_filename == "cluster_1_raw.ply" and got[1].mean_track_length == 3.2

    # the pipeline's asdict(ClusterStats): "id" instead of "cluster_id", extra keys, NaN
    pipeline_style = _cluster(0, images=["a.jpg"], model_dir="m", mean_reprojection_error=np.nan)
    pipeline_style["id"] = pipeline_style.pop("cluster_id")
    store.replace_clusters(job.id, [pipeline_style])
    (only,) = store.get_clusters(job.id)
    assert only.cluster_id == 0 and only.mean_reprojection_error is None

    store.replace_clusters(job.id, [])
    assert store.get_clusters(job.id) == []
    with pytest.raises(ValueError):
        store.replace_clusters(job.id, [_cluster(0), _cluster(0)])
    with pytest.raises(ValueError):
        store.replace_clusters(job.id, [{"cluster_id": 0}])
    with pytest.raises(UnknownJobError):
        store.replace_clusters(new_id(), [_cluster(0)])


def test_deleting_a_user_cascades_to_jobs_and_clusters(store: JobStore) -> None:
    store.create_user("admin", "h", role="admin")
    doomed = store.create_user("doomed", "h").id
    kept = store.create_user("kept", "h").id
    j1 = store.create_job(new_id(), doomed, "ds", "s")
    j2 = store.create_job(new_id(), kept, "ds", "s")
    store.replace_clusters(j1.id, [_cluster(0)])
    store.replace_clusters(j2.id, [_cluster(0)])

    assert store.delete_user("doomed") is True
    assert store.get_job(j1.id) is None and store.get_clusters(j1.id) == []
    assert store.get_job(j2.id) is not None and len(store.get_clusters(j2.id)) == 1
    assert store.delete_job(j2.id) is True
    assert store.get_clusters(j2.id) == []


# --- aggregates ------------------------------------------------------------------------------


def test_aggregates(store: JobStore, owner: int) -> None:
    assert store.count_active_jobs() == 0
    assert store.count_jobs_by_stage() == dict.fromkeys(STAGES, 0)
    assert store.finished_durations() == [] and store.latest_success() is None

    jobs = {stage: store.create_job(new_id(), owner, "ds", stage) for stage in STAGES}
    for stage in ACTIVE_STAGES:
        store.update_progress(jobs[stage].id, stage, 50, stage)
    store.mark_failed(jobs["failed"].id, "boom")
    first = jobs["success"]
    store.update_progress(first.id, "extracting", 10, "go")
    store.update_progress(first.id, "success", 100, "done", registration_rate=0.9)
    second = store.create_job(new_id(), owner, "ds", "second")
    store.update_progress(second.id, "success", 100, "straight from the queue")

    assert store.count_active_jobs() == len(ACTIVE_STAGES)
    counts = store.count_jobs_by_stage()
    assert counts == {**dict.fromkeys(STAGES, 1), "success": 2}

    # the fake clock ticks once per reading: first ran from one update to the next
    first_done, second_done = store.get_job(first.id), store.get_job(second.id)
    assert store.finished_durations() == [
        second_done.finished_at - second_done.started_at,
        first_done.finished_at - first_done.started_at,
    ]
    assert store.finished_durations()[1] == 1.0
    assert store.finished_durations(limit=1) == [0.0]
    assert store.latest_success() == second_done
    assert first_done.registration_rate == 0.9
