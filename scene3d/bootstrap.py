"""First start: make sure an admin exists, without any default password.

The first admin's password comes from ``SCENE3D_ADMIN_PASSWORD``; when it is not
set, one is generated, written to ``$SCENE3D_HOME/secrets/admin_password`` with
mode 0600 and returned so the caller can show it once.
"""

from __future__ import annotations

import os
import secrets

from scene3d.security import hash_password
from scene3d.settings import Settings
from scene3d.store import JobStore, UserExistsError

ADMIN_USER_ENV = "SCENE3D_ADMIN_USER"
ADMIN_PASSWORD_ENV = "SCENE3D_ADMIN_PASSWORD"


def ensure_admin(store: JobStore, settings: Settings) -> str | None:
    """Create the first admin if there is none; return a generated password, else None."""
    if store.count_admins() > 0:
        return None
    username = os.environ.get(ADMIN_USER_ENV, "admin")
    password = os.environ.get(ADMIN_PASSWORD_ENV)
    generated = None
    if not password:
        password = generated = secrets.token_urlsafe(18)
    try:
        store.create_user(username, hash_password(password), role="admin")
    except UserExistsError:
        return None  # another process created it first; its password is the one on file
    if generated:
        path = settings.secrets_dir / "admin_password"
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{username}:{password}\n")
    return generated
