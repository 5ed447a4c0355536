"""Initial schema: users, jobs, clusters.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STAGES = "'queued', 'extracting', 'matching', 'triangulating', 'decimating', 'success', 'failed'"
"""Written out, not imported: a revision must keep creating what it created on day one."""


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), server_default=sa.text("'user'"), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.CheckConstraint("role IN ('admin', 'user')", name=op.f("ck_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("dataset_name", sa.String(255), nullable=False),
        sa.Column("scene_name", sa.String(255), nullable=False),
        sa.Column("stage", sa.String(16), server_default=sa.text("'queued'"), nullable=False),
        sa.Column("progress", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("message", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("started_at", sa.Double(), nullable=True),
        sa.Column("finished_at", sa.Double(), nullable=True),
        sa.Column("n_images", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("n_valid_images", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("n_points", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("registration_rate", sa.Double(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("has_drift", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("drift_severity", sa.String(8), server_default=sa.text("'low'"), nullable=False),
        sa.Column("drift_report", sa.JSON(), nullable=True),
        sa.Column("model_version", sa.String(255), nullable=True),
        sa.Column("preset", sa.String(64), nullable=True),
        sa.Column("timings", sa.JSON(), nullable=True),
        sa.CheckConstraint(f"stage IN ({_STAGES})", name=op.f("ck_jobs_stage")),
        sa.CheckConstraint("progress >= 0 AND progress <= 100", name=op.f("ck_jobs_progress")),
        sa.CheckConstraint(
            "drift_severity IN ('low', 'medium', 'high')", name=op.f("ck_jobs_drift_severity")
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_jobs_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index(op.f("ix_jobs_owner_id"), "jobs", ["owner_id"])
    op.create_index(op.f("ix_jobs_stage"), "jobs", ["stage"])
    op.create_table(
        "clusters",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("cluster_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("num_points3d", sa.Integer(), nullable=False),
        sa.Column("num_images", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(1024), nullable=False),
        sa.Column("raw_filename", sa.String(1024), nullable=True),
        sa.Column("mean_reprojection_error", sa.Double(), nullable=True),
        sa.Column("mean_track_length", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_clusters_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clusters")),
        sa.UniqueConstraint("job_id", "cluster_id", name=op.f("uq_clusters_job_cluster")),
    )


def downgrade() -> None:
    op.drop_table("clusters")
    op.drop_index(op.f("ix_jobs_stage"), table_name="jobs")
    op.drop_index(op.f("ix_jobs_owner_id"), table_name="jobs")
    op.drop_table("jobs")
    op.drop_table("users")
