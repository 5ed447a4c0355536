"""Platform settings, read once from the environment.

Embedded default: everything lives under ``SCENE3D_HOME`` (``~/.scene3d``): the SQLite job
store, job folders and generated secrets. Production sets ``SCENE3D_DATABASE_URL`` to a
PostgreSQL URL. No setting has a default password or secret: secrets are generated on
first use and stored with mode 0600.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None


def read_or_create_secret(path: Path, nbytes: int = 32) -> str:
    """Return the secret stored at ``path``; create it (mode 0600) on first use.

    The file is created with ``O_EXCL`` and mode 0600 in one step, so the secret is
    never readable by others, not even for a moment, and two processes starting
    together agree on one value.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process may have created it an instant ago and not written it yet.
        for _ in range(50):
            value = path.read_text().strip()
            if value:
                return value
            time.sleep(0.05)
        raise ValueError(f"secret file {path.name} is empty; delete it to regenerate") from None
    value = secrets.token_urlsafe(nbytes)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


@dataclass
class Settings:
    """Everything the API and the job store need; see :meth:`from_env`."""

    home: Path = field(default_factory=lambda: Path("~/.scene3d").expanduser())
    """State folder: SQLite file, job folders, secrets, logs (``SCENE3D_HOME``)."""
    database_url: str = ""
    """SQLAlchemy URL of the job store (``SCENE3D_DATABASE_URL``); default SQLite in home."""
    jwt_secret: str = ""
    """HS256 signing key (``SCENE3D_JWT_SECRET``); default generated in home/secrets."""
    jwt_expiry_seconds: int = 900
    """Lifetime of an access token (``JWT_EXPIRY_SECONDS``)."""
    jwt_issuer: str = "scene3d"
    """``iss`` claim written and required."""
    jwt_audience: str = "scene3d-api"
    """``aud`` claim written and required."""
    max_upload_bytes: int = 2 * 1024**3
    """Largest accepted upload body (``SCENE3D_MAX_UPLOAD_BYTES``); 413 beyond it."""
    login_max_failures: int = 5
    """Failed logins one client may make per window before 429 (``SCENE3D_LOGIN_MAX_FAILURES``)."""
    login_window_seconds: int = 300
    """Window of the login rate limit, in seconds (``SCENE3D_LOGIN_WINDOW_SECONDS``)."""
    default_preset: str = "sift"
    """Engine preset used for jobs until a model registry provides one (``SCENE3D_PRESET``)."""

    @property
    def jobs_dir(self) -> Path:
        return self.home / "jobs"

    @property
    def secrets_dir(self) -> Path:
        return self.home / "secrets"

    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    @classmethod
    def from_env(cls, home: Path | None = None) -> Settings:
        """Read the environment; generate missing secrets under ``home``."""
        home = Path(home or os.environ.get("SCENE3D_HOME", "~/.scene3d")).expanduser()
        # Photos, password hashes and results of every user live here: owner only.
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        database_url = os.environ.get("SCENE3D_DATABASE_URL") or f"sqlite:///{home / 'scene3d.db'}"
        jwt_secret = os.environ.get("SCENE3D_JWT_SECRET") or read_or_create_secret(
            home / "secrets" / "jwt_secret"
        )
        return cls(
            home=home,
            database_url=database_url,
            jwt_secret=jwt_secret,
            jwt_expiry_seconds=_env_int("JWT_EXPIRY_SECONDS", 900),
            max_upload_bytes=_env_int("SCENE3D_MAX_UPLOAD_BYTES", 2 * 1024**3),
            login_max_failures=_env_int("SCENE3D_LOGIN_MAX_FAILURES", 5),
            login_window_seconds=_env_int("SCENE3D_LOGIN_WINDOW_SECONDS", 300),
            default_preset=os.environ.get("SCENE3D_PRESET", "sift"),
        )
