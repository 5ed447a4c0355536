"""Users of the platform: creating them, looking them up, new passwords and roles, removal.

Passwords arrive already hashed (see :mod:`scene3d.security`); the store never sees one
in clear.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from scene3d.store.engine import Database
from scene3d.store.errors import LastAdminError, UserExistsError
from scene3d.store.models import User
from scene3d.store.records import UserRecord
from scene3d.store.stages import ROLES
from scene3d.store.values import violation


def _user(row: Any) -> UserRecord:
    return UserRecord(**row._mapping)


class UserStore(Database):
    """The ``users`` table behind the store's user methods."""

    def create_user(self, username: str, password_hash: str, role: str = "user") -> UserRecord:
        """Add a user; ``password_hash`` is stored as given (hash it before calling)."""
        if not username or username != username.strip() or len(username) > 64:
            raise ValueError("username must be 1-64 characters without surrounding spaces")
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        if not password_hash:
            raise ValueError("password hash must not be empty")
        values = {
            "username": username,
            "password_hash": password_hash,
            "role": role,
            "created_at": self._now(),
            "token_stamp": uuid.uuid4().hex,
        }
        try:
            with self._write() as conn:
                result = conn.execute(insert(User).values(**values))
                (user_id,) = result.inserted_primary_key
        except IntegrityError as exc:
            if violation(exc) == "unique":
                raise UserExistsError(f"user {username!r} already exists") from None
            raise
        return UserRecord(id=user_id, **values)

    def get_user(self, username: str) -> UserRecord | None:
        """The user called ``username``, or None."""
        with self._read() as conn:
            row = conn.execute(select(User.__table__).where(User.username == username)).first()
        return _user(row) if row else None

    def get_user_by_id(self, user_id: int) -> UserRecord | None:
        """The user with id ``user_id`` (what a token names), or None."""
        with self._read() as conn:
            row = conn.execute(select(User.__table__).where(User.id == user_id)).first()
        return _user(row) if row else None

    def list_users(self) -> list[UserRecord]:
        """Every user, oldest first."""
        with self._read() as conn:
            rows = conn.execute(select(User.__table__).order_by(User.id)).all()
        return [_user(r) for r in rows]

    def set_password_hash(self, username: str, password_hash: str) -> bool:
        """Replace a user's hash; False when there is no such user."""
        if not password_hash:
            raise ValueError("password hash must not be empty")
        # A new stamp: tokens issued under the old password stop working.
        stmt = (
            update(User)
            .where(User.username == username)
            .values(password_hash=password_hash, token_stamp=uuid.uuid4().hex)
        )
        with self._write() as conn:
            return conn.execute(stmt).rowcount == 1

    def set_role(self, username: str, role: str) -> bool:
        """Give a user another role (older tokens stop working); False when unknown.
        Raises :class:`LastAdminError` rather than demote the last administrator."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        with self._write() as conn:
            locked = select(User.username).where(User.role == "admin").with_for_update()
            admins = set(conn.execute(locked).scalars())
            if role != "admin" and admins == {username}:
                raise LastAdminError(f"{username!r} is the last administrator")
            stmt = (
                update(User)
                .where(User.username == username)
                .values(role=role, token_stamp=uuid.uuid4().hex)
            )
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
        """How many administrators exist (start-up creates one when there are none)."""
        with self._read() as conn:
            stmt = select(func.count()).select_from(User).where(User.role == "admin")
            return int(conn.execute(stmt).scalar_one())
