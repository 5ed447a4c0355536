"""jobs.model_name: the model a job ran with is a name and a version (the registered model,
or ``preset:<name>`` for a job run with a preset straight from code).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("model_name", sa.String(255), nullable=True))
    # Jobs from before ran with the preset they name.
    jobs = sa.table("jobs", sa.column("preset", sa.String), sa.column("model_name", sa.String))
    op.execute(
        sa.update(jobs)
        .where(jobs.c.preset.is_not(None))
        .values(model_name=sa.literal("preset:") + jobs.c.preset)
    )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("model_name")
