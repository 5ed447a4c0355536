"""Configuration of the embedded Airflow: one environment shared by every Airflow process.

Everything is passed as ``AIRFLOW__SECTION__KEY`` environment variables instead of an
edited ``airflow.cfg``, so the api-server, the scheduler, the dag-processor, the task
processes they spawn and ``dag.test()`` in the tests all read the same values, and a
fresh ``SCENE3D_HOME`` needs no set-up step. The secrets Airflow signs with are
generated once under ``settings.secrets_dir`` (mode 0600) and passed to every
component explicitly: left to itself, each Airflow 3 process invents its own
``[api_auth] jwt_secret`` and the components reject each other's tokens.

Typical use (what ``scene3d up`` does)::

    env = airflow_env(settings)
    for argv in airflow_commands(settings.airflow_port).values():  # migrate first
        ...  # start each as its own process; stop each by PID
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
from pathlib import Path

from scene3d.settings import Settings, read_or_create_secret

REPO_ROOT = Path(__file__).resolve().parents[1]
DAGS_FOLDER = REPO_ROOT / "dags"
SIMPLE_AUTH_MANAGER = (
    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
)

PARALLELISM = 2
"""Task processes the LocalExecutor runs at once: a laptop has few cores, and the
reconstruction tasks use several threads each."""


def airflow_home(settings: Settings) -> Path:
    return settings.home / "airflow"


def airflow_log_dir(settings: Settings) -> Path:
    return settings.home / "logs" / "airflow"


def passwords_file(settings: Settings) -> Path:
    """The simple auth manager's passwords file: JSON ``{"user": "password"}``, mode 0600."""
    return settings.secrets_dir / "airflow_passwords.json"


def _write_private_json(path: Path, data: dict[str, str]) -> None:
    """Replace ``path`` atomically with ``data``; the file is never readable by others."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(data) + "\n")
    tmp.replace(path)


def airflow_password(settings: Settings) -> str:
    """The password of ``settings.airflow_user``: the setting when given, else generated
    on first use; never a default.

    It lives in the very file the simple auth manager reads (``[core]
    simple_auth_manager_passwords_file``), so there is one source of truth: Airflow
    finds the user already there and does not generate (and print) its own password.
    """
    user = settings.airflow_user
    path = passwords_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        passwords = json.loads(path.read_text() or "{}")
    except FileNotFoundError:
        passwords = {}
    except json.JSONDecodeError:
        raise ValueError(f"{path.name} is not valid JSON; delete it to regenerate") from None
    if not isinstance(passwords, dict):
        raise ValueError(f"{path.name} must hold a JSON object; delete it to regenerate")
    stored = passwords.get(user)
    if stored and (not settings.airflow_password or stored == settings.airflow_password):
        return str(stored)
    # A password the operator set wins over the stored one. Otherwise, on first use,
    # generate through read_or_create_secret (O_EXCL), so two processes starting together
    # agree on one password; then publish it in Airflow's format.
    password = settings.airflow_password or read_or_create_secret(
        settings.secrets_dir / "airflow_password", nbytes=24
    )
    _write_private_json(path, {**passwords, user: password})
    return password


def _fernet_key(settings: Settings) -> str:
    """A Fernet key (url-safe base64 of 32 bytes) derived from a generated 0600 secret.

    Airflow encrypts connections and variables with it; every component must agree.
    """
    seed = read_or_create_secret(settings.secrets_dir / "airflow_fernet_seed")
    return base64.urlsafe_b64encode(hashlib.sha256(seed.encode()).digest()).decode()


def _python_path(base: dict[str, str]) -> str:
    """Repo root first, so the DAG's ``import scene3d`` works without an installed package."""
    parts = [str(REPO_ROOT)]
    parts += [p for p in base.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(REPO_ROOT)]
    return os.pathsep.join(parts)


TASK_HEARTBEAT_TIMEOUT = 60
"""Seconds without a heartbeat after which Airflow counts a running task as dead (its
supervisor beats every few seconds whatever the task itself is doing)."""


ORPHAN_CHECK_SECONDS = 30
"""How often the scheduler resets the tasks of schedulers that stopped heartbeating."""


def async_database_env(database_url: str) -> dict[str, str]:
    """Airflow also opens its database asynchronously, and derives that URL by swapping the
    driver for asyncpg, which scene3d does not install. psycopg 3 (the job store's driver)
    is asynchronous too, so a ``postgresql+psycopg`` URL serves for both."""
    if database_url.startswith("postgresql+psycopg:"):
        return {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": database_url}
    return {}


def airflow_env(settings: Settings, base_env: dict[str, str] | None = None) -> dict[str, str]:
    """The full environment for every Airflow process of the embedded platform.

    ``base_env`` (default: ``os.environ``) is copied first, then the scene3d settings the
    tasks and DAG files read (:meth:`Settings.child_env`, no secrets), then Airflow's own
    configuration, so a stray ``AIRFLOW__...`` in the caller's shell cannot point the
    platform at another database or key (other ``AIRFLOW__`` tuning passes through).
    ``settings.airflow_database_url`` replaces the embedded SQLite metadata database
    (PostgreSQL in production).
    """
    home = airflow_home(settings)
    logs = airflow_log_dir(settings)
    home.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    api_port = settings.airflow_port
    api_url = f"http://127.0.0.1:{api_port}"
    database_url = settings.airflow_database_url or f"sqlite:///{home / 'airflow.db'}"
    airflow_password(settings)  # the file must exist before Airflow generates its own

    env = settings.child_env(base_env)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            # Airflow writes its defaults here on first start; we never edit it.
            "AIRFLOW_CONFIG": str(home / "airflow.cfg"),
            # Where the DAGs are: the repository's dags/ folder, not AIRFLOW_HOME/dags.
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # New DAGs start paused; the orchestrator client unpauses the ones it uses,
            # so nothing runs before the platform is fully up.
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
            **async_database_env(database_url),
            "AIRFLOW__DATABASE__LOAD_DEFAULT_CONNECTIONS": "False",
            # LocalExecutor works on SQLite in Airflow 3; small limits for a laptop.
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(PARALLELISM),
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(PARALLELISM),
            # A task whose process died (killed with the scheduler that ran it) is failed, and
            # so retried, after a minute without heartbeats instead of Airflow's five.
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(TASK_HEARTBEAT_TIMEOUT),
            # That check only covers tasks its own scheduler queued: the running tasks of a
            # scheduler that died are reset (and so run again) by the orphan check, every
            # five minutes by default; a restarted scheduler looks every half minute.
            "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": str(ORPHAN_CHECK_SECONDS),
            "AIRFLOW__CORE__FERNET_KEY": _fernet_key(settings),
            # One admin user; its password is generated and kept in a 0600 file.
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{settings.airflow_user}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file(settings)),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            # Shared signing keys: without them each process generates its own and
            # tokens issued by one component are refused by the others.
            "AIRFLOW__API_AUTH__JWT_SECRET": read_or_create_secret(
                settings.secrets_dir / "airflow_jwt_secret"
            ),
            "AIRFLOW__API__SECRET_KEY": read_or_create_secret(
                settings.secrets_dir / "airflow_secret_key"
            ),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__BASE_URL": api_url,
            "AIRFLOW__API__WORKERS": "1",
            # Airflow 3 tasks report their state through the api-server's Execution API.
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(logs),
            "AIRFLOW__LOGGING__DAG_PROCESSOR_CHILD_PROCESS_LOG_DIRECTORY": str(
                logs / "dag_processor"
            ),
            "PYTHONPATH": _python_path(env),
        }
    )
    return env


def airflow_executable() -> list[str]:
    """The ``airflow`` CLI of this interpreter: the venv's script, else ``python -m airflow``."""
    script = Path(sys.executable).with_name("airflow")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "airflow"]


def airflow_commands(api_port: int) -> dict[str, list[str]]:
    """argv of each Airflow process, in start order; run each with :func:`airflow_env`.

    ``migrate`` runs to completion first; the other three are long-running and must be
    started as separate processes and stopped by PID (``airflow standalone`` leaves
    orphans). The scheduler skips its log-serving sub-process, which would listen on
    every interface: the api-server reads task logs from the shared log folder instead.
    """
    airflow = airflow_executable()
    return {
        "migrate": [*airflow, "db", "migrate"],
        "api-server": [*airflow, "api-server", "--host", "127.0.0.1", "--port", str(api_port)],
        "scheduler": [*airflow, "scheduler", "--skip-serve-logs"],
        "dag-processor": [*airflow, "dag-processor"],
    }
