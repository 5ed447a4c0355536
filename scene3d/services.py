"""A small process supervisor for the embedded platform.

Each service runs in its own session (process group) with its log in
``$SCENE3D_HOME/logs/<name>.log`` and its PID recorded in ``$SCENE3D_HOME/run/``.
Every process also carries ``SCENE3D_RUN_ID`` in its environment, inherited by
everything it spawns (Airflow's task workers, Ray's workers), so :func:`stop_all`
can find and stop processes that left their parent's group: no orphans survive.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

RUN_ID_ENV = "SCENE3D_RUN_ID"


@dataclass
class Service:
    """One long-running process and how to tell it is healthy."""

    name: str
    argv: list[str]
    env: dict[str, str]
    health_url: str | None = None
    """GET this URL; a 2xx answer means the service is up."""
    healthy: Callable[[], bool] | None = None
    """Custom check, used when there is no URL (or in addition to it)."""
    cwd: Path | None = None
    start_timeout: float = 180.0
    stop_timeout: float = 15.0
    """Seconds between SIGTERM and SIGKILL when stopping."""
    restart_after: tuple[str, ...] = ()
    """Services this one must be started again after (it keeps a connection to them that
    does not survive their restart)."""


@dataclass
class Supervisor:
    """Starts services, records their PIDs, checks and stops them."""

    home: Path
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        # A platform that is (partly) running keeps its run id: what is started now must be
        # found by the `scene3d down` of that run.
        self.run_id = self._load().get("run_id") or self.run_id

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def state_file(self) -> Path:
        return self.run_dir / "services.json"

    # ------------------------------------------------------------- state
    def _load(self) -> dict:
        if self.state_file.exists():
            return json.loads(self.state_file.read_text())
        return {"run_id": self.run_id, "services": {}}

    def _save(self, state: dict) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_file)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer of the state at a time: the watchdog and a second ``scene3d up`` or
        ``down`` may act on the same services."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with (self.run_dir / "services.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def stopping(self) -> bool:
        """True once ``stop_all`` has begun (or finished): nothing may be started again."""
        return not self.state_file.exists() or bool(self._load().get("stopping"))

    def running(self) -> set[str]:
        """Names of the services whose recorded process is alive and provably ours (no
        health probe: the watchdog asks this every few seconds)."""
        return {name for name, info in self._load()["services"].items() if _running(info)}

    # ------------------------------------------------------------- start
    def run_once(self, name: str, argv: list[str], env: dict[str, str], timeout: float) -> None:
        """A one-shot command (e.g. a database migration); its output goes to its log."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / f"{name}.log").open("ab") as log:
            result = subprocess.run(
                argv, env={**env, RUN_ID_ENV: self.run_id}, stdout=log, stderr=subprocess.STDOUT,
                timeout=timeout, check=False,
            )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(
                f"{name} failed (exit {result.returncode}); see logs/{name}.log"
                + self._log_tail(name)
            )

    def start(self, service: Service) -> int | None:
        """Start ``service`` unless its recorded process is alive; its PID, or None when it
        was running already (or the platform is being stopped)."""
        with self._locked():
            state = self._load()
            if state.get("stopping"):
                return None
            info = state["services"].get(service.name)
            if info and _running(info):
                return None
            if info:  # its leader died: what it left in its session must not hold ports
                self._kill_session(info)
            self.log_dir.mkdir(parents=True, exist_ok=True)
            with (self.log_dir / f"{service.name}.log").open("ab") as log:
                proc = subprocess.Popen(
                    service.argv,
                    env={**service.env, RUN_ID_ENV: self.run_id},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=service.cwd,
                    start_new_session=True,  # own process group: stopped as a whole
                )
            state["run_id"] = self.run_id
            state["services"][service.name] = {
                "pid": proc.pid,
                "create_time": _create_time(proc.pid),
                "argv": service.argv,
                "health_url": service.health_url,
                "stop_timeout": service.stop_timeout,
                "started_at": time.time(),
            }
            self._save(state)
            return proc.pid

    def _kill_session(self, info: dict) -> None:
        """Kill what is left of a dead service's session: processes in the session its
        leader opened that also carry this run's id (both, so nothing unrelated that
        happens to reuse the PID is touched)."""
        pid = info["pid"]
        for proc in marked(self.run_id):
            with contextlib.suppress(psutil.Error, ProcessLookupError, PermissionError):
                if os.getsid(proc.pid) == pid:
                    proc.kill()

    def stop(self, name: str) -> bool:
        """Stop one service (SIGTERM to its group, SIGKILL after its stop timeout) and
        forget it; True if it had to be killed."""
        with self._locked():
            state = self._load()
            info = state["services"].pop(name, None)
            killed = bool(info) and self._stop_process(info)
            if info:
                self._kill_session(info)
            self._save(state)
        return killed

    def _stop_process(self, info: dict) -> bool:
        pid = info["pid"]
        if not _same_process(pid, info.get("create_time")):
            return False  # gone, or the PID now belongs to another program: leave it alone
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + info.get("stop_timeout", 15.0)
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            _signal_group(pid, signal.SIGKILL)
            return True
        return False

    def wait_healthy(self, service: Service) -> float:
        """Block until healthy; returns seconds waited. Raises if it died or timed out."""
        start = time.monotonic()
        while True:
            if self.healthy(service, since=start):
                return time.monotonic() - start
            time.sleep(0.5)

    def healthy(self, service: Service, since: float) -> bool:
        """One look at a service started at ``since`` (``time.monotonic()``): True when it
        answers its check, False while it is still starting; raises if it died or has not
        become healthy within its start timeout."""
        info = self._load()["services"].get(service.name)
        if not info or not _alive(info["pid"]):
            raise RuntimeError(
                f"{service.name} exited during start-up; see logs/{service.name}.log"
                + self._log_tail(service.name)
            )
        if _check(service):
            return True
        if time.monotonic() - since > service.start_timeout:
            raise RuntimeError(
                f"{service.name} not healthy after {service.start_timeout:.0f} s; "
                f"see logs/{service.name}.log" + self._log_tail(service.name)
            )
        return False

    def _log_tail(self, name: str, lines: int = 25) -> str:
        """The end of a service's log, so a start-up failure explains itself where it is
        reported (a CI log, a terminal) without a second look at the state folder."""
        path = self.log_dir / f"{name}.log"
        try:
            with path.open("rb") as log:
                log.seek(max(0, path.stat().st_size - 16_384))
                tail = log.read().decode(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return "".join(f"\n  | {line}" for line in tail) if tail else ""

    # ------------------------------------------------------------- status and stop
    def status(self) -> list[dict]:
        rows = []
        for name, info in self._load()["services"].items():
            alive = _running(info)
            healthy = None
            if alive and info.get("health_url"):
                healthy = _get_ok(info["health_url"])
            rows.append({"name": name, "pid": info["pid"], "alive": alive, "healthy": healthy})
        return rows

    def stop_all(self) -> list[int]:
        """Stop every service, newest first (each waited for, so a service can still talk
        to the ones it depends on while it shuts down), then every leftover process
        carrying our run id. Returns the PIDs that had to be killed with SIGKILL."""
        with self._locked():  # from here on nothing is started again (see `start`)
            state = self._load()
            state["stopping"] = True
            if self.state_file.exists():
                self._save(state)
        run_id = state.get("run_id", self.run_id)
        sessions = {
            info["pid"]
            for info in state["services"].values()
            if _same_process(info["pid"], info.get("create_time"))
        }
        killed = [
            info["pid"]
            for info in reversed(list(state["services"].values()))
            if self._stop_process(info)
        ]
        deadline = time.monotonic() + 5
        while marked(run_id, sessions) and time.monotonic() < deadline:
            time.sleep(0.3)
        for proc in marked(run_id, sessions):
            with contextlib.suppress(psutil.Error):
                proc.kill()
                killed.append(proc.pid)
        self.state_file.unlink(missing_ok=True)
        return killed


def reap_children() -> list[int]:
    """Collect every child of this process that has exited (services stopped by someone
    else would stay zombies until their parent waits for them). Returns their PIDs."""
    reaped = []
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:  # no children at all
            return reaped
        if pid == 0:  # children, none of them exited
            return reaped
        reaped.append(pid)


def marked(run_id: str, sessions: set[int] | None = None) -> list[psutil.Process]:
    """Processes that belong to the run: their environment carries the run id, or they
    are in the session of one of its services (each service leads its own session).

    Both are checked because a process may rewrite its environment block (setproctitle
    does, unless ``SPT_NOENV`` is set) and may start a session of its own.
    """
    found = []
    me = os.getpid()
    for proc in psutil.process_iter(["pid"]):
        if proc.pid == me:
            continue
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if (sessions and os.getsid(proc.pid) in sessions) or (
                proc.environ().get(RUN_ID_ENV) == run_id
            ):
                found.append(proc)
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    return found


def _create_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _same_process(pid: int, create_time: float | None) -> bool:
    """True if ``pid`` is still the process we started (PIDs are reused, after a reboot or
    simply over time). An entry without its start time proves nothing: it is never ours, so
    nothing is ever signalled on its word."""
    if create_time is None:
        return False
    current = _create_time(pid)
    return current is not None and abs(current - create_time) < 1.0


def _running(info: dict) -> bool:
    """The process of a state entry is ours and has not exited (a zombie has)."""
    return _alive(info["pid"]) and _same_process(info["pid"], info.get("create_time"))


def _alive(pid: int) -> bool:
    try:
        proc = psutil.Process(pid)
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(os.getpgid(pid), sig)


def _get_ok(url: str) -> bool:
    """2xx only: a 404 means a proxy is up but the application behind it is not (Ray
    Serve's proxy answers 404 for every path until the app's routes are published)."""
    try:
        return httpx.get(url, timeout=2.0).is_success
    except httpx.HTTPError:
        return False


def _check(service: Service) -> bool:
    if service.health_url and not _get_ok(service.health_url):
        return False
    return service.healthy() if service.healthy else True
