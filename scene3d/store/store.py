"""The durable job store: users, jobs and their clusters in SQLite or PostgreSQL.

One :class:`JobStore` per process is enough; it is thread-safe (each call takes its own
connection from the pool) and several processes (the API, Airflow tasks, the CLI) may
share one database:

* SQLite runs in WAL mode with a busy timeout, and every write transaction starts with
  ``BEGIN IMMEDIATE`` so writers queue on the file lock instead of failing half-way;
* PostgreSQL connections are checked before use (``pool_pre_ping``), so a restarted
  server costs one reconnect, not a failed request;
* progress updates are a single conditional ``UPDATE``, so two workers reporting at the
  same time can never move a job backwards.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    case,
    create_engine,
    delete,
    event,
    false,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError

from scene3d.store.errors import (
    JobExistsError,
    LastAdminError,
    UnknownJobError,
    UnknownUserError,
    UserExistsError,
)
from scene3d.store.models import Cluster, Job, User
from scene3d.store.records import ClusterRecord, JobRecord, UserRecord
from scene3d.store.stages import (
    ACTIVE_STAGES,
    DRIFT_SEVERITIES,
    PIPELINE_ORDER,
    ROLES,
    STAGES,
    TERMINAL_STAGES,
)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

SQLITE_BUSY_TIMEOUT_S = 30.0
"""How long a SQLite writer waits for another process's write lock before giving up."""

_PG_MIGRATION_LOCK = 0x5C3D_0001
"""PostgreSQL advisory-lock key that serialises concurrent ``migrate()`` calls."""

_WRITE = "scene3d_write"
"""Connection execution option: on SQLite, start the transaction with BEGIN IMMEDIATE."""

_JOB_FIELDS = frozenset(
    {
        "n_images",
        "n_valid_images",
        "n_points",
        "registration_rate",
        "model_version",
        "preset",
        "timings",
    }
)
"""Columns ``update_progress(**fields)`` may set alongside the stage."""

_alembic_lock = threading.Lock()
"""Alembic keeps its migration context in module globals: one upgrade per process at once."""


# --- helpers -------------------------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    """Make ``value`` storable as JSON on both backends.

    PostgreSQL refuses ``NaN`` in JSON and SQLite would store it as invalid JSON, so
    non-finite floats become null; NumPy scalars and arrays become plain Python values.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalar or array
        return _json_safe(value.tolist())
    return value


def _dumps(value: Any) -> str:
    return json.dumps(_json_safe(value), allow_nan=False)


def _finite(value: Any) -> float | None:
    """A float column value: None for missing or non-finite (SQLite stores NaN as NULL)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _violation(exc: IntegrityError) -> str:
    """Which constraint an insert broke: ``unique``, ``foreign_key`` or ``other``."""
    code = getattr(exc.orig, "sqlstate", None)  # psycopg
    message = str(exc.orig).upper()
    if code == "23505" or "UNIQUE" in message:
        return "unique"
    if code == "23503" or "FOREIGN KEY" in message:
        return "foreign_key"
    return "other"


def _check_job_id(job_id: str) -> None:
    """Job ids name folders on disk: accept only canonical UUID strings (no path tricks)."""
    try:
        ok = str(uuid.UUID(job_id)) == job_id
    except (ValueError, TypeError, AttributeError):
        ok = False
    if not ok:
        raise ValueError(f"job id must be a lower-case UUID string, got {job_id!r}")


def _check_progress(progress: float) -> int:
    if isinstance(progress, bool) or not isinstance(progress, int | float):
        raise ValueError(f"progress must be a number, got {progress!r}")
    value = round(progress)
    if not 0 <= value <= 100:
        raise ValueError(f"progress must be within 0..100, got {progress!r}")
    return value


def _user(row: Any) -> UserRecord:
    return UserRecord(**row._mapping)


def _job(row: Any) -> JobRecord:
    return JobRecord(**row._mapping)


def _cluster(row: Any) -> ClusterRecord:
    m = row._mapping
    return ClusterRecord(
        job_id=m["job_id"],
        cluster_id=m["cluster_id"],
        name=m["name"],
        num_points3D=m["num_points3d"],
        num_images=m["num_images"],
        filename=m["filename"],
        raw_filename=m["raw_filename"],
        mean_reprojection_error=m["mean_reprojection_error"],
        mean_track_length=m["mean_track_length"],
    )


def _cluster_row(job_id: str, cluster: Mapping[str, Any]) -> dict[str, Any]:
    """Column values of one cluster; ``id`` is accepted for ``cluster_id`` and unknown keys
    are ignored, so ``dataclasses.asdict(ClusterStats)`` from the pipeline fits as is."""
    try:
        cluster_id = cluster["cluster_id"] if "cluster_id" in cluster else cluster["id"]
        return {
            "job_id": job_id,
            "cluster_id": int(cluster_id),
            "name": str(cluster["name"]),
            "num_points3d": int(cluster["num_points3D"]),
            "num_images": int(cluster["num_images"]),
            "filename": str(cluster["filename"]),
            "raw_filename": cluster.get("raw_filename") or None,
            "mean_reprojection_error": _finite(cluster.get("mean_reprojection_error")),
            "mean_track_length": _finite(cluster.get("mean_track_length")),
        }
    except KeyError as exc:
        raise ValueError(f"cluster description lacks {exc.args[0]!r}") from None


def alembic_config(url: str | URL, connection: Connection | None = None) -> Config:
    """An Alembic configuration built in code (no alembic.ini) for this package's revisions.

    With ``connection``, ``env.py`` runs on it inside the caller's transaction.
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    rendered = url if isinstance(url, str) else url.render_as_string(hide_password=False)
    cfg.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))  # configparser escape
    cfg.attributes["url"] = rendered
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _enable_wal(cursor: Any) -> None:
    """Switch a new database file to WAL; a no-op once it is (the mode is stored in the file).

    The switch needs an exclusive lock, and SQLite answers SQLITE_BUSY at once, without
    calling the busy handler, while another process is switching the same fresh file;
    so retry until the busy timeout instead of failing the connect.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
        json_serializer=_dumps,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module; _on_begin emits BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        _enable_wal(cursor)  # readers never block the writer
        cursor.execute("PRAGMA foreign_keys = ON")  # off by default: ON DELETE CASCADE needs it
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A deferred transaction that reads first and writes later can fail at once with
        # SQLITE_BUSY (busy timeout or not); IMMEDIATE takes the write lock up front.
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


# --- the store -----------------------------------------------------------------------------


class JobStore:
    """Users, jobs and clusters behind one SQLAlchemy engine; returns frozen records.

    ``url`` is ``sqlite:///path/to/file.db`` (the parent folder is created) or
    ``postgresql+psycopg://user@host/db``; libpq parameters go in the query string, e.g.
    ``?options=-csearch_path%3Dmyschema``. In-memory SQLite (``sqlite://``) gives each
    thread its own database, so it only suits single-threaded use.
    """

    def __init__(self, url: str, *, clock: Callable[[], float] = time.time) -> None:
        """Connect lazily to ``url``; ``clock`` (epoch seconds) is replaceable for tests."""
        self.url = make_url(url)
        self._now = clock
        self.dialect = self.url.get_backend_name()
        if self.dialect == "sqlite":
            self._engine = _sqlite_engine(self.url)
        else:
            self._engine = create_engine(self.url, pool_pre_ping=True, json_serializer=_dumps)

    def __repr__(self) -> str:
        return f"JobStore({self.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        """Close pooled connections (tests, shutdown); the store reconnects if used again."""
        self._engine.dispose()

    def __enter__(self) -> JobStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._engine.connect() as conn:
            conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._engine.connect() as conn:
            yield conn

    # --- schema ----------------------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to the newest revision; a no-op when it already is.

        Safe when several processes start together: the upgrade runs inside one
        transaction holding a lock (the SQLite write lock, a PostgreSQL advisory lock),
        so the second caller waits, then finds the schema current.
        """
        with _alembic_lock, self._write() as conn:
            if self.dialect == "postgresql":
                lock = text("SELECT pg_advisory_xact_lock(:key)")
                conn.execute(lock, {"key": _PG_MIGRATION_LOCK})
            command.upgrade(alembic_config(self.url, conn), "head")

    # --- users -----------------------------------------------------------------------------

    def create_user(self, username: str, password_hash: str, role: str = "user") -> UserRecord:
        """Add a user; ``password_hash`` is stored as given (hash it before calling)."""
        if not username or username != username.strip() or len(username) > 64:
            raise ValueError("username must be 1-64 characters without surrounding spaces")
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        if not password_hash:
            raise ValueError("password hash must not be empty")
        now = self._now()
        values = {
            "username": username,
            "password_hash": password_hash,
            "role": role,
            "created_at": now,
        }
        try:
            with self._write() as conn:
                result = conn.execute(insert(User).values(**values))
                (user_id,) = result.inserted_primary_key
        except IntegrityError as exc:
            if _violation(exc) == "unique":
                raise UserExistsError(f"user {username!r} already exists") from None
            raise
        return UserRecord(id=user_id, **values)

    def get_user(self, username: str) -> UserRecord | None:
        with self._read() as conn:
            row = conn.execute(select(User.__table__).where(User.username == username)).first()
        return _user(row) if row else None

    def get_user_by_id(self, user_id: int) -> UserRecord | None:
        with self._read() as conn:
            row = conn.execute(select(User.__table__).where(User.id == user_id)).first()
        return _user(row) if row else None

    def list_users(self) -> list[UserRecord]:
        with self._read() as conn:
            rows = conn.execute(select(User.__table__).order_by(User.id)).all()
        return [_user(r) for r in rows]

    def set_password_hash(self, username: str, password_hash: str) -> bool:
        """Replace a user's hash; False when there is no such user."""
        if not password_hash:
            raise ValueError("password hash must not be empty")
        stmt = update(User).where(User.username == username).values(password_hash=password_hash)
        with self._write() as conn:
            return conn.execute(stmt).rowcount == 1

    def delete_user(self, username: str) -> bool:
        """Remove a user and (by cascade) their jobs and clusters; False when unknown.

        Job folders on disk are not touched: the caller removes them. Raises
        :class:`LastAdminError` rather than leave the platform without an administrator;
        the admin rows are locked first so two concurrent removals cannot both pass.
        """
        with self._write() as conn:
            locked = select(User.username).where(User.role == "admin").with_for_update()
            admins = set(conn.execute(locked).scalars())
            if admins == {username}:
                raise LastAdminError(f"{username!r} is the last administrator")
            return conn.execute(delete(User).where(User.username == username)).rowcount == 1

    def count_admins(self) -> int:
        with self._read() as conn:
            stmt = select(func.count()).select_from(User).where(User.role == "admin")
            return int(conn.execute(stmt).scalar_one())

    # --- jobs ------------------------------------------------------------------------------

    def create_job(
        self,
        job_id: str,
        owner_id: int,
        dataset_name: str,
        scene_name: str,
        preset: str | None = None,
        model_version: str | None = None,
    ) -> JobRecord:
        """Record a new job in stage ``queued``; ``job_id`` must be a canonical UUID."""
        _check_job_id(job_id)
        values: dict[str, Any] = {
            "id": job_id,
            "owner_id": owner_id,
            "dataset_name": dataset_name,
            "scene_name": scene_name,
            "stage": "queued",
            "progress": 0,
            "message": "",
            "created_at": self._now(),
            "preset": preset,
            "model_version": model_version,
        }
        try:
            with self._write() as conn:
                conn.execute(insert(Job).values(**values))
                row = conn.execute(select(Job.__table__).where(Job.id == job_id)).one()
        except IntegrityError as exc:
            kind = _violation(exc)
            if kind == "unique":
                raise JobExistsError(f"job {job_id} already exists") from None
            if kind == "foreign_key":
                raise UnknownUserError(f"no user with id {owner_id}") from None
            raise
        return _job(row)

    def get_job(self, job_id: str) -> JobRecord | None:
        with self._read() as conn:
            row = conn.execute(select(Job.__table__).where(Job.id == job_id)).first()
        return _job(row) if row else None

    def list_jobs(self, owner_id: int | None = None, limit: int | None = None) -> list[JobRecord]:
        """Jobs, newest first; only ``owner_id``'s when given."""
        stmt = select(Job.__table__).order_by(Job.created_at.desc(), Job.id)
        if owner_id is not None:
            stmt = stmt.where(Job.owner_id == owner_id)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._read() as conn:
            return [_job(r) for r in conn.execute(stmt)]

    def update_progress(
        self, job_id: str, stage: str, progress: float, message: str, **fields: Any
    ) -> bool:
        """Move a job forward; returns False (and changes nothing) when that would go back.

        Applied only when ``stage`` is later than the current stage, or the same
        non-terminal stage with no lower progress. The check and the write are one
        conditional UPDATE, so concurrent reporters cannot undo each other's progress.
        Leaving ``queued`` stamps ``started_at`` (once); reaching ``success`` stamps
        ``finished_at``. ``fields`` may set n_images, n_valid_images, n_points,
        registration_rate, model_version, preset and timings. Failures go through
        :meth:`mark_failed`.
        """
        if stage not in PIPELINE_ORDER:
            hint = "; use mark_failed()" if stage == "failed" else ""
            raise ValueError(f"unknown stage {stage!r}{hint}")
        unknown = set(fields) - _JOB_FIELDS
        if unknown:
            raise TypeError(f"update_progress() cannot set {sorted(unknown)}")
        values: dict[str, Any] = dict(fields)
        if "registration_rate" in values:
            values["registration_rate"] = _finite(values["registration_rate"])
        progress = _check_progress(progress)
        now = self._now()
        earlier = PIPELINE_ORDER[: PIPELINE_ORDER.index(stage)]
        allowed: ColumnElement[bool] = Job.stage.in_(earlier) if earlier else false()
        if stage not in TERMINAL_STAGES:
            allowed = or_(allowed, and_(Job.stage == stage, Job.progress <= progress))
        values.update(stage=stage, progress=progress, message=message)
        if stage != "queued":
            values["started_at"] = func.coalesce(Job.started_at, now)
        if stage == "success":
            values["finished_at"] = now
        stmt = update(Job).where(Job.id == job_id, allowed).values(**values)
        with self._write() as conn:
            return conn.execute(stmt).rowcount == 1

    def mark_failed(self, job_id: str, error: str) -> bool:
        """End a job as failed with ``error``; False if it already ended (or is unknown)."""
        first_line = (error.strip().splitlines() or ["failed"])[0][:500]
        stmt = (
            update(Job)
            .where(Job.id == job_id, Job.stage.not_in(TERMINAL_STAGES))
            .values(
                stage="failed",
                progress=0,
                error=error,
                message=first_line,
                finished_at=self._now(),
            )
        )
        with self._write() as conn:
            return conn.execute(stmt).rowcount == 1

    def set_drift(
        self, job_id: str, has_drift: bool, severity: str, report: Mapping[str, Any] | None
    ) -> bool:
        """Store the drift verdict of a job; False when the job is unknown."""
        if severity not in DRIFT_SEVERITIES:
            raise ValueError(f"severity must be one of {DRIFT_SEVERITIES}, got {severity!r}")
        stmt = (
            update(Job)
            .where(Job.id == job_id)
            .values(
                has_drift=bool(has_drift),
                drift_severity=severity,
                drift_report=dict(report) if report is not None else None,
            )
        )
        with self._write() as conn:
            return conn.execute(stmt).rowcount == 1

    def replace_clusters(self, job_id: str, clusters: Sequence[Mapping[str, Any]]) -> None:
        """Set the clusters of a job to exactly ``clusters`` in one transaction.

        Idempotent: a retried task rewrites the same rows instead of adding duplicates.
        """
        rows = [_cluster_row(job_id, c) for c in clusters]
        ids = [r["cluster_id"] for r in rows]
        if len(ids) != len(set(ids)):
            raise ValueError(f"duplicate cluster ids in {ids}")
        with self._write() as conn:
            if conn.execute(select(Job.id).where(Job.id == job_id)).first() is None:
                raise UnknownJobError(f"no job {job_id}")
            conn.execute(delete(Cluster).where(Cluster.job_id == job_id))
            if rows:
                conn.execute(insert(Cluster.__table__), rows)

    def get_clusters(self, job_id: str) -> list[ClusterRecord]:
        stmt = (
            select(Cluster.__table__).where(Cluster.job_id == job_id).order_by(Cluster.cluster_id)
        )
        with self._read() as conn:
            return [_cluster(r) for r in conn.execute(stmt)]

    def delete_job(self, job_id: str) -> bool:
        """Remove a job and its clusters; False when unknown. Its folder is the caller's."""
        with self._write() as conn:
            return conn.execute(delete(Job).where(Job.id == job_id)).rowcount == 1

    # --- aggregates (Prometheus, computed at scrape time) -----------------------------------

    def count_active_jobs(self) -> int:
        """Jobs currently running (extracting to decimating)."""
        stmt = select(func.count()).select_from(Job).where(Job.stage.in_(ACTIVE_STAGES))
        with self._read() as conn:
            return int(conn.execute(stmt).scalar_one())

    def count_jobs_by_stage(self) -> dict[str, int]:
        """Number of jobs per stage, every stage present (0 included) so gauges reset."""
        counts = dict.fromkeys(STAGES, 0)
        with self._read() as conn:
            for stage, n in conn.execute(select(Job.stage, func.count()).group_by(Job.stage)):
                counts[stage] = int(n)
        return counts

    def finished_durations(self, limit: int = 1000) -> list[float]:
        """Run times (seconds) of the latest ``limit`` successful jobs, newest first.

        Measured from ``started_at``, or ``created_at`` for a job never seen running.
        """
        duration = Job.finished_at - func.coalesce(Job.started_at, Job.created_at)
        stmt = (
            select(duration)
            .where(Job.stage == "success", Job.finished_at.is_not(None))
            .order_by(Job.finished_at.desc())
            .limit(limit)
        )
        with self._read() as conn:
            return [float(d) for d in conn.execute(stmt).scalars()]

    def duration_histogram(self, bounds: Sequence[float]) -> tuple[list[int], int, float]:
        """Cumulative counts of successful jobs with run time <= each bound, the count and the
        sum, over all jobs (computed in SQL, so the histogram only ever grows)."""
        duration = Job.finished_at - func.coalesce(Job.started_at, Job.created_at)
        columns = [func.sum(case((duration <= b, 1), else_=0)) for b in bounds]
        stmt = select(func.count(), func.coalesce(func.sum(duration), 0.0), *columns).where(
            Job.stage == "success", Job.finished_at.is_not(None)
        )
        with self._read() as conn:
            row = conn.execute(stmt).one()
        return [int(v or 0) for v in row[2:]], int(row[0]), float(row[1])

    def latest_success(self) -> JobRecord | None:
        """The most recently finished successful job (registration ratio, valid images)."""
        stmt = (
            select(Job.__table__)
            .where(Job.stage == "success", Job.finished_at.is_not(None))
            .order_by(Job.finished_at.desc(), Job.id)
            .limit(1)
        )
        with self._read() as conn:
            row = conn.execute(stmt).first()
        return _job(row) if row else None
