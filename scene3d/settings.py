"""Platform settings: every knob, typed and documented, read once from the environment.

Embedded default: everything lives under ``SCENE3D_HOME`` (``~/.scene3d``): the SQLite job
store, job folders and generated secrets. Production sets ``SCENE3D_DATABASE_URL`` to a
PostgreSQL URL. No setting has a default password or secret: secrets are generated on
first use and stored with mode 0600.

Each field names its environment variable in its metadata, so reading (:meth:`from_env`)
and handing settings to child processes (:meth:`child_env`) use one list: nothing is kept
by hand elsewhere. Fields marked secret never travel: a process that uses one reads it
itself (:meth:`load_secrets`) from its own environment or the 0600 files of the state folder.

Every variable ``X`` may instead be given as ``X_FILE``, the path of a file holding the
value (Docker secrets: ``SCENE3D_JWT_SECRET_FILE=/run/secrets/scene3d_jwt_secret``), so a
secret need not sit in a container's environment.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_type_hints

if TYPE_CHECKING:
    from drift.report import DriftRules

MIN_PASSWORD_LENGTH = 8
"""Shortest password a user (the first admin included) may have."""
MIN_SECRET_BYTES = 32
"""Shortest signing key accepted: HS256 keys below it fall to a word-list attack."""


def read_or_create_secret(path: Path, nbytes: int = 32, value: str | None = None) -> str:
    """Return the secret stored at ``path``; create it (mode 0600) on first use, with
    ``value`` when given (an operator's choice), else a new random one.

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
    value = value or secrets.token_urlsafe(nbytes)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


def _env(name: str, *, secret: bool = False) -> dict[str, Any]:
    return {"env": name, "secret": secret}


FILE_SUFFIX = "_FILE"
"""``X_FILE`` names a file whose content is the value of ``X``."""


def env_value(environ: Mapping[str, str], name: str) -> str:
    """The value of ``name`` in ``environ``, else the content of the file ``name_FILE``
    names (trailing newline removed), else ``""``. A named file that cannot be read is a
    clear ``ValueError``, not a silent empty setting."""
    value = environ.get(name, "")
    if value:
        return value
    path = environ.get(name + FILE_SUFFIX, "")
    if not path:
        return ""
    try:
        return Path(path).read_text().rstrip("\r\n")
    except OSError as exc:
        raise ValueError(f"{name}{FILE_SUFFIX}={path} cannot be read: {exc.strerror}") from None


@dataclass
class Settings:
    """Everything the API, the job tasks and the platform processes are configured by."""

    home: Path = field(
        default_factory=lambda: Path("~/.scene3d").expanduser(), metadata=_env("SCENE3D_HOME")
    )
    """State folder: SQLite file, job folders, secrets, logs."""
    database_url: str = field(default="", metadata=_env("SCENE3D_DATABASE_URL"))
    """SQLAlchemy URL of the job store; empty: the SQLite file ``scene3d.db`` in home."""
    jwt_secret: str = field(default="", metadata=_env("SCENE3D_JWT_SECRET", secret=True))
    """HS256 signing key of API tokens; empty: generated in ``home/secrets/jwt_secret``."""
    jwt_expiry_seconds: int = field(default=900, metadata=_env("JWT_EXPIRY_SECONDS"))
    """Lifetime of an access token."""
    jwt_issuer: str = "scene3d"
    """``iss`` claim written and required."""
    jwt_audience: str = "scene3d-api"
    """``aud`` claim written and required."""
    max_upload_bytes: int = field(default=2 * 1024**3, metadata=_env("SCENE3D_MAX_UPLOAD_BYTES"))
    """Largest accepted upload body; 413 beyond it."""
    upload_read_timeout_seconds: float = field(
        default=30.0, metadata=_env("SCENE3D_UPLOAD_READ_TIMEOUT_SECONDS")
    )
    """Longest silence inside an upload body before it is dropped with 408."""
    user_max_unfinished_jobs: int = field(
        default=3, metadata=_env("SCENE3D_USER_MAX_UNFINISHED_JOBS")
    )
    """Jobs one user may have queued or running at once; more uploads answer 429."""
    user_uploads_per_minute: int = field(
        default=10, metadata=_env("SCENE3D_USER_UPLOADS_PER_MINUTE")
    )
    """Accepted uploads, and drift checks, one user may send per minute; more answer 429."""
    admin_max_unfinished_jobs: int = field(
        default=0, metadata=_env("SCENE3D_ADMIN_MAX_UNFINISHED_JOBS")
    )
    """The same quota for administrators; 0: none."""
    admin_uploads_per_minute: int = field(
        default=0, metadata=_env("SCENE3D_ADMIN_UPLOADS_PER_MINUTE")
    )
    """The same rate for administrators; 0: none."""
    reconcile_interval_seconds: float = field(
        default=60.0, metadata=_env("SCENE3D_RECONCILE_INTERVAL_SECONDS")
    )
    """How often the API settles jobs whose start went wrong against Airflow's runs; 0: never."""
    max_heavy_requests: int = field(default=4, metadata=_env("SCENE3D_MAX_HEAVY_REQUESTS"))
    """Upload checks and drift checks one API process runs at once; more answer 503 with
    ``Retry-After`` (health, login and status requests always have threads left)."""
    login_max_failures: int = field(default=5, metadata=_env("SCENE3D_LOGIN_MAX_FAILURES"))
    """Failed logins for one account from one address per window before 429."""
    login_max_failures_wide: int = field(
        default=20, metadata=_env("SCENE3D_LOGIN_MAX_FAILURES_WIDE")
    )
    """Failed logins per window from one address over all accounts, and for one account
    over all addresses, before 429."""
    trusted_proxies: str = field(default="", metadata=_env("SCENE3D_TRUSTED_PROXIES"))
    """Comma-separated addresses or networks of reverse proxies whose ``X-Forwarded-For``
    names the client; empty: the socket's peer is the client, whatever a header says."""
    login_window_seconds: int = field(default=300, metadata=_env("SCENE3D_LOGIN_WINDOW_SECONDS"))
    """Window of the login rate limit, in seconds."""
    default_preset: str = field(default="sift", metadata=_env("SCENE3D_PRESET"))
    """Engine preset a registry without a ``champion`` registers as its first version; the
    model of every job where no MLflow is configured."""
    model_poll_seconds: float = field(default=30.0, metadata=_env("SCENE3D_MODEL_POLL_SECONDS"))
    """How often the model worker looks where the ``champion`` alias points."""
    experiment_params: str = field(default="", metadata=_env("SCENE3D_EXPERIMENT_PARAMS"))
    """A YAML file merged over the repository's ``params.yaml`` for the platform's
    retraining runs (other benchmark folders, a dataset subset, other candidates)."""
    pipeline_dir: str = field(default="", metadata=_env("SCENE3D_PIPELINE_DIR"))
    """Folder with the benchmark pipeline's ``dvc.yaml`` and ``params.yaml``; empty: the
    source checkout the package runs from (the image sets ``/app``)."""
    dvc_remote: str = field(default="", metadata=_env("SCENE3D_DVC_REMOTE"))
    """Where retraining runs push their DVC outputs and run cache (a path, or an
    ``s3://`` URL with its credentials in DVC's own environment variables); empty:
    ``home/dvc-remote``."""
    drift_p_threshold: float = field(default=0.005, metadata=_env("SCENE3D_DRIFT_P_THRESHOLD"))
    """KS p-value below which one image feature has drifted (docs/drift.md)."""
    drift_embedding_threshold: float = field(
        default=0.08, metadata=_env("SCENE3D_DRIFT_EMBEDDING_THRESHOLD")
    )
    """MMD of the global image descriptors above which the photos show other things."""
    drift_medium_share: float = field(default=0.15, metadata=_env("SCENE3D_DRIFT_MEDIUM_SHARE"))
    """Share of drifted checks from which drift severity is ``medium``."""
    drift_high_share: float = field(default=0.4, metadata=_env("SCENE3D_DRIFT_HIGH_SHARE"))
    """Share of drifted checks from which drift severity is ``high``."""
    drift_min_images: int = field(default=5, metadata=_env("SCENE3D_DRIFT_MIN_IMAGES"))
    """Below this many photos only extreme shifts count as drift (small-sample rule)."""
    drift_schedule: str = field(default="@hourly", metadata=_env("SCENE3D_DRIFT_SCHEDULE"))
    """Schedule of ``drift_detection_dag`` (a cron expression or preset)."""
    drift_retrain_cooldown_hours: float = field(
        default=24.0, metadata=_env("SCENE3D_DRIFT_RETRAIN_COOLDOWN_HOURS")
    )
    """Least time between two retraining runs that high drift triggers."""
    admin_user: str = field(default="admin", metadata=_env("SCENE3D_ADMIN_USER"))
    """Name of the first admin, created on first start."""
    admin_password: str = field(default="", metadata=_env("SCENE3D_ADMIN_PASSWORD", secret=True))
    """Password of the first admin; empty: generated, printed once, kept in secrets (0600)."""
    airflow_url: str = field(default="", metadata=_env("SCENE3D_AIRFLOW_URL"))
    """Airflow api-server the API triggers DAG runs on; empty: jobs run in local threads."""
    airflow_user: str = field(default="scene3d", metadata=_env("SCENE3D_AIRFLOW_USER"))
    """The Airflow user (role admin) the platform logs in as."""
    airflow_password: str = field(
        default="", metadata=_env("SCENE3D_AIRFLOW_PASSWORD", secret=True)
    )
    """That user's password; empty: generated in ``home/secrets/airflow_passwords.json``."""
    airflow_database_url: str = field(
        default="", metadata=_env("SCENE3D_AIRFLOW_DATABASE_URL", secret=True)
    )
    """Airflow's metadata database; empty: SQLite in ``home/airflow`` (embedded platform)."""
    ray_address: str = field(default="", metadata=_env("SCENE3D_RAY_ADDRESS"))
    """Ray cluster whose model worker runs the GPU-heavy tasks; empty: they run in-process."""
    mlflow_tracking_uri: str = field(default="", metadata=_env("MLFLOW_TRACKING_URI"))
    """MLflow tracking server jobs are logged to; empty: nothing is logged."""
    mlflow_backend_uri: str = field(
        default="", metadata=_env("SCENE3D_MLFLOW_BACKEND_URI", secret=True)
    )
    """Backend store of the embedded MLflow server (a PostgreSQL URL in production);
    empty: SQLite in ``home/mlflow``."""
    max_concurrent_jobs: int = field(default=1, metadata=_env("SCENE3D_MAX_CONCURRENT_JOBS"))
    """Reconstructions that run at once (Airflow ``max_active_runs``, local threads)."""
    gpu_slots: int = field(default=1, metadata=_env("SCENE3D_GPU_SLOTS"))
    """Slots of the Airflow pool the GPU-heavy task runs in."""
    worker_gpus: float = field(default=-1.0, metadata=_env("SCENE3D_WORKER_GPUS"))
    """GPUs each model worker replica reserves in Ray; negative: one when the machine
    that deploys the application has a GPU, else none. A cluster whose head has no GPU
    (docker-compose) sets 1, so the replicas land on the GPU workers."""
    worker_max_replicas: int = field(default=1, metadata=_env("SCENE3D_WORKER_MAX_REPLICAS"))
    """Most model worker replicas Ray Serve scales to (one per GPU worker at most is useful);
    above 1 the deployment autoscales between one and this many."""
    api_host: str = field(default="127.0.0.1", metadata=_env("SCENE3D_API_HOST"))
    """Address ``scene3d serve`` listens on (the embedded platform keeps loopback)."""
    api_port: int = field(default=8000, metadata=_env("SCENE3D_API_PORT"))
    """Port of the API."""
    airflow_port: int = field(default=8080, metadata=_env("SCENE3D_AIRFLOW_PORT"))
    """Port of the embedded Airflow api-server."""
    mlflow_port: int = field(default=5000, metadata=_env("SCENE3D_MLFLOW_PORT"))
    """Port of the embedded MLflow server."""
    ray_port: int = field(default=6380, metadata=_env("SCENE3D_RAY_PORT"))
    """GCS port of the embedded Ray head."""

    def __post_init__(self) -> None:
        for name in (
            "max_concurrent_jobs",
            "gpu_slots",
            "worker_max_replicas",
            "max_heavy_requests",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 < self.drift_p_threshold < 1 or self.drift_min_images < 1:
            raise ValueError(
                "SCENE3D_DRIFT_P_THRESHOLD must lie in (0, 1) and SCENE3D_DRIFT_MIN_IMAGES be "
                f"at least 1, got {self.drift_p_threshold} and {self.drift_min_images}"
            )
        if not 0 < self.drift_medium_share <= self.drift_high_share <= 1:
            raise ValueError(
                "drift shares must satisfy 0 < SCENE3D_DRIFT_MEDIUM_SHARE <= "
                f"SCENE3D_DRIFT_HIGH_SHARE <= 1, got {self.drift_medium_share} and "
                f"{self.drift_high_share}"
            )
        # Weak secrets are refused at start, not discovered later in a token or a login.
        if self.admin_password and len(self.admin_password) < MIN_PASSWORD_LENGTH:
            raise ValueError(
                f"SCENE3D_ADMIN_PASSWORD is too short: it needs at least {MIN_PASSWORD_LENGTH} "
                "characters"
            )
        if self.jwt_secret and len(self.jwt_secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(
                f"SCENE3D_JWT_SECRET is too weak: it needs at least {MIN_SECRET_BYTES} bytes "
                "(unset it to have one generated)"
            )

    @property
    def jobs_dir(self) -> Path:
        return self.home / "jobs"

    @property
    def secrets_dir(self) -> Path:
        return self.home / "secrets"

    @property
    def drift_reference(self) -> Path:
        """The platform's own reference profile (``scene3d drift reference``, or built from
        the benchmark at first start); uploads are compared with the serving version's
        profile where it carries one."""
        return self.drift_dir / "reference.json"

    @property
    def drift_dir(self) -> Path:
        """Drift state: the platform reference, the scheduled checks' latest result."""
        return self.home / "drift"

    def drift_rules(self) -> DriftRules:
        """The severity rules of drift reports, from these settings."""
        from drift.report import DriftRules

        return DriftRules(
            p_threshold=self.drift_p_threshold,
            embedding_threshold=self.drift_embedding_threshold,
            medium_share=self.drift_medium_share,
            high_share=self.drift_high_share,
            min_images=self.drift_min_images,
        )

    @property
    def scratch_dir(self) -> Path:
        """Temporary work that is never kept (``POST /drift`` unpacks uploads here)."""
        return self.home / "tmp"

    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    @classmethod
    def from_env(
        cls, home: Path | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Read every setting from ``environ`` (default ``os.environ``). Secrets given there
        are kept; generated ones stay in their files until a process that uses them asks
        (:meth:`load_secrets`). A malformed number is a clear ``ValueError``."""
        environ = os.environ if environ is None else environ
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f.metadata.get("env")
            raw = env_value(environ, name) if name else ""
            if raw == "":
                continue
            kind = hints[f.name]
            if kind in (int, float):
                try:
                    values[f.name] = kind(raw)
                except ValueError:
                    what = "a whole number" if kind is int else "a number"
                    raise ValueError(f"{name} must be {what}, got {raw!r}") from None
            else:
                values[f.name] = hints[f.name](raw)
        home = Path(home or values.get("home") or "~/.scene3d").expanduser()
        # Photos, password hashes and results of every user live here: owner only.
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        values["home"] = home
        values.setdefault("database_url", f"sqlite:///{home / 'scene3d.db'}")
        return cls(**values)

    def load_secrets(self, environ: Mapping[str, str] | None = None) -> Settings:
        """This copy with the API's secrets where this process finds them: the signing key
        from its environment, else the generated 0600 file of the state folder (created on
        first use); the Airflow password from its environment (else
        :func:`scene3d.airflow.airflow_password` reads its file). What a process that signs
        tokens calls; the others never hold them."""
        environ = os.environ if environ is None else environ
        key = self.jwt_secret or env_value(environ, "SCENE3D_JWT_SECRET")
        airflow = self.airflow_password or env_value(environ, "SCENE3D_AIRFLOW_PASSWORD")
        return replace(
            self,
            jwt_secret=key or read_or_create_secret(self.secrets_dir / "jwt_secret"),
            airflow_password=airflow,
        )

    def child_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of a child process: ``base`` (default ``os.environ``) without
        any setting's variable, then every setting that is not a secret."""
        env = dict(os.environ if base is None else base)
        for f in fields(self):
            name = f.metadata.get("env")
            if not name:
                continue
            env.pop(name, None)
            env.pop(name + FILE_SUFFIX, None)
            value = getattr(self, f.name)
            if not f.metadata["secret"] and value not in ("", None):
                env[name] = str(value)
        return env
