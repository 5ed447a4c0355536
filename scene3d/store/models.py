"""ORM models of the job store: ``users``, ``jobs`` and ``clusters``.

These classes describe the schema; the migrations in :mod:`scene3d.store.migrations`
create it (never ``create_all``), and a test checks both agree. Times are Unix epoch
seconds stored as double precision, so SQLite and PostgreSQL return the same numbers
without any time-zone handling.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Double,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from scene3d.store.stages import DRIFT_SEVERITIES, ROLES, STAGES

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Deterministic constraint names, so later migrations can drop or alter them by name."""


def _in(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), server_default=text("'user'"))
    created_at: Mapped[float] = mapped_column(Double)
    token_stamp: Mapped[str] = mapped_column(String(32), server_default=text("''"))
    """Written into every token of the user; replaced by a new password or role, so older
    tokens stop working (a new user under an old name starts with a new one)."""


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(_in("stage", STAGES), name="stage"),
        CheckConstraint("progress >= 0 AND progress <= 100", name="progress"),
        CheckConstraint(_in("drift_severity", DRIFT_SEVERITIES), name="drift_severity"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    dataset_name: Mapped[str] = mapped_column(String(255))
    scene_name: Mapped[str] = mapped_column(String(255))
    stage: Mapped[str] = mapped_column(String(16), index=True, server_default=text("'queued'"))
    progress: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    message: Mapped[str] = mapped_column(Text, server_default=text("''"))
    created_at: Mapped[float] = mapped_column(Double)
    started_at: Mapped[float | None] = mapped_column(Double)
    finished_at: Mapped[float | None] = mapped_column(Double)
    n_images: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    n_valid_images: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    n_points: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    registration_rate: Mapped[float | None] = mapped_column(Double)
    error: Mapped[str | None] = mapped_column(Text)
    has_drift: Mapped[bool] = mapped_column(Boolean, server_default=false())
    drift_severity: Mapped[str] = mapped_column(String(8), server_default=text("'low'"))
    drift_report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    model_name: Mapped[str | None] = mapped_column(String(255))
    model_version: Mapped[str | None] = mapped_column(String(255))
    preset: Mapped[str | None] = mapped_column(String(64))
    timings: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Cluster(Base):
    __tablename__ = "clusters"
    __table_args__ = (UniqueConstraint("job_id", "cluster_id", name="uq_clusters_job_cluster"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(36), ForeignKey("jobs.id", ondelete="CASCADE"))
    cluster_id: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(255))
    # Lower-case column name so hand-written SQL on PostgreSQL needs no quoting.
    num_points3D: Mapped[int] = mapped_column("num_points3d", Integer)
    num_images: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(1024))
    raw_filename: Mapped[str | None] = mapped_column(String(1024))
    mean_reprojection_error: Mapped[float | None] = mapped_column(Double)
    mean_track_length: Mapped[float | None] = mapped_column(Double)
