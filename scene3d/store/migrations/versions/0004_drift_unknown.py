"""jobs.drift_severity may be ``unknown``: a drift check without a reference profile (or
without a readable photo) cannot say ``low``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NAME = "ck_jobs_drift_severity"


def _replace(values: str) -> None:
    # batch mode: SQLite cannot alter a constraint in place, so the table is copied
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint(op.f(_NAME), type_="check")
        batch.create_check_constraint(op.f(_NAME), f"drift_severity IN ({values})")


def upgrade() -> None:
    _replace("'low', 'medium', 'high', 'unknown'")


def downgrade() -> None:
    op.execute("UPDATE jobs SET drift_severity = 'low' WHERE drift_severity = 'unknown'")
    _replace("'low', 'medium', 'high'")
