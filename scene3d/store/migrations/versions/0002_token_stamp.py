"""users.token_stamp: tokens name the user by id and carry this stamp; a new password, a
new role or a new user under an old name gets a new stamp, so older tokens stop working.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column("token_stamp", sa.String(32), server_default=sa.text("''"), nullable=False),
    )
    users = sa.table("users", sa.column("id", sa.Integer), sa.column("token_stamp", sa.String))
    conn = op.get_bind()
    for (user_id,) in conn.execute(sa.select(users.c.id)).all():
        stamp = uuid.uuid4().hex
        conn.execute(sa.update(users).where(users.c.id == user_id).values(token_stamp=stamp))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("token_stamp")
