"""``scene3d up``, ``down``, ``status`` and ``serve``: starting, stopping and watching the
platform (MLflow, Airflow, Ray Serve, the API)."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable

from rich.markup import escape
from rich.table import Table

from scene3d.cli.console import console, out

STOPPED_ELSEWHERE_WAIT = 120.0
"""Seconds the foreground ``scene3d up`` waits for a ``scene3d down`` run elsewhere to end."""


def _reaping(stop: threading.Event) -> Callable[[float], bool]:
    """``stop.wait`` that first collects exited children: services that died or were
    stopped by someone else would stay zombies of the process that started them."""
    from scene3d.services import reap_children

    def wait(timeout: float) -> bool:
        reap_children()
        return stop.wait(timeout)

    return wait


def _stamped(message: str) -> None:
    """A watchdog line, unwrapped and with the time in front (it ends up in a log file)."""
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}", flush=True)


def _shown(password: str) -> str:
    """A generated password as printed: only to a terminal (shown once); a log or a CI
    transcript gets a pointer to its 0600 file instead."""
    if sys.stdout.isatty():
        return f"[bold]{escape(password)}[/bold] (shown once)"
    return "(not shown: not a terminal)"


def cmd_up(args: argparse.Namespace) -> int:
    """Start the whole platform (what is missing of it); stay in the foreground, starting
    again any service that dies, until Ctrl-C, unless --detach."""
    import signal

    from scene3d.platform import AlreadyRunning, down, platform_services, up
    from scene3d.services import reap_children
    from scene3d.settings import Settings
    from scene3d.watchdog import Watchdog

    settings = Settings.from_env()
    start = time.monotonic()
    try:
        platform, generated, _ = up(
            settings, log=lambda m: console.print(f"[dim]{m}[/dim]"), detach=args.detach
        )
    except AlreadyRunning as exc:
        out.print(f"{escape(str(exc))}; nothing to start (`scene3d status` shows it)")
        return 0
    except KeyboardInterrupt:  # `up` has already stopped what it had started
        console.print("interrupted during start-up; everything started was stopped")
        return 130
    except RuntimeError as exc:  # a service did not come up; `up` stopped the others
        console.print(f"[red]failed to start:[/red] {escape(str(exc))}")
        return 1
    out.print(f"scene3d is up in {time.monotonic() - start:.0f} s (state in {settings.home})")
    for name, url in platform.urls.items():
        out.print(f"  {name:<8} {url}")
    if generated:
        out.print(
            f"API user [bold]{settings.admin_user}[/bold], password {_shown(generated)} "
            f"(kept in {settings.secrets_dir / 'admin_password'}, mode 0600)"
        )
    out.print(
        f"Airflow UI user {settings.airflow_user!r}; password in "
        f"{settings.secrets_dir / 'airflow_passwords.json'}"
    )
    if args.detach:
        out.print("running in the background (a watchdog restarts what dies); stop with "
                  "`scene3d down`")  # fmt: skip
        return 0
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    out.print("press Ctrl-C to stop")
    wait = _reaping(stop)
    watchdog = Watchdog(platform.supervisor, lambda: platform_services(platform.settings), _stamped)
    watchdog.run(wait)
    if not stop.is_set():
        # `scene3d down` ran elsewhere: let it finish, collect our children and leave.
        deadline = time.monotonic() + STOPPED_ELSEWHERE_WAIT
        while platform.supervisor.state_file.exists() and time.monotonic() < deadline:
            wait(0.5)
        reap_children()
        out.print("the platform was stopped by `scene3d down`; exiting")
        return 0
    out.print("stopping ...")
    down(settings)
    reap_children()
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    """The watchdog of a platform started with ``up --detach``: runs until ``scene3d down``."""
    import signal

    from scene3d.platform import platform_services, platform_settings
    from scene3d.services import Supervisor
    from scene3d.settings import Settings
    from scene3d.watchdog import Watchdog

    settings = platform_settings(Settings.from_env())
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    _stamped(f"watchdog: watching the platform in {settings.home}")
    watchdog = Watchdog(Supervisor(settings.home), lambda: platform_services(settings), _stamped)
    watchdog.run(_reaping(stop))
    _stamped("watchdog: stopped")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from scene3d.platform import down
    from scene3d.settings import Settings

    killed = down(Settings.from_env())
    out.print("stopped" + (f" (had to kill {len(killed)} processes)" if killed else ""))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    import psutil

    from scene3d.platform import status
    from scene3d.settings import Settings

    rows = status(Settings.from_env())
    if not rows:
        out.print("nothing is running")
        return 1
    table = Table(title="scene3d services")
    for col in ("service", "pid", "running", "healthy", "memory MiB (with children)"):
        table.add_column(col)
    for row in rows:
        rss = 0
        try:
            proc = psutil.Process(row["pid"])
            rss = sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])
        except psutil.Error:
            pass
        healthy = "-" if row["healthy"] is None else ("yes" if row["healthy"] else "no")
        table.add_row(
            row["name"],
            str(row["pid"]),
            "yes" if row["alive"] else "no",
            healthy,
            f"{rss / 1024**2:.0f}",
        )
    out.print(table)
    return 0 if all(r["alive"] for r in rows) else 1


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the API alone with the embedded defaults (SQLite, jobs in local threads)."""
    from dataclasses import replace

    import uvicorn

    from scene3d import runtime
    from scene3d.platform import prepare_registry, proxy_header_options
    from scene3d.settings import Settings

    settings = Settings.from_env()
    settings = replace(
        settings, api_host=args.host or settings.api_host, api_port=args.port or settings.api_port
    )
    generated = runtime.prepare(settings)
    # The drift reference, and with MLflow configured a first champion to serve.
    try:
        prepare_registry(settings)
    except Exception as exc:  # MLflow down: the API still serves, /ready says what is missing
        out.print(f"[yellow]model registry not ready: {exc}[/yellow]")
    out.print(
        f"scene3d API on http://{settings.api_host}:{settings.api_port}  (state in {settings.home})"
    )
    if generated:
        out.print(
            f"created user [bold]{settings.admin_user}[/bold] with password "
            f"{_shown(generated)} (kept in {settings.secrets_dir / 'admin_password'}, mode 0600)"
        )
    else:
        out.print("log in as an existing user (see `scene3d users list`)")
    # The app is built in uvicorn's own process by name: scene3d never imports api.
    uvicorn.run(
        "api.main:create_standalone_app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        log_level="info",
        server_header=False,  # no "Server: uvicorn": nothing tells a client what runs here
        **proxy_header_options(settings),
    )
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    """The platform's start-up alone, for a topology that starts its services itself
    (docker-compose): migrate the job store, create the first admin, where MLflow is
    configured register the default preset as the first ``champion``, and where Airflow is
    configured create its GPU pool, unpause the DAGs and, with --resume, start again the
    jobs a stopped platform left unfinished."""
    from scene3d import runtime
    from scene3d.platform import prepare_airflow, prepare_registry, resume_jobs
    from scene3d.settings import Settings

    settings = Settings.from_env().load_secrets()
    generated = runtime.prepare(settings)
    out.print(f"job store ready ({settings.home})")
    if generated:
        out.print(
            f"created user {settings.admin_user} with password {_shown(generated)}; kept in "
            f"{settings.secrets_dir / 'admin_password'}, mode 0600"
        )
    champion = prepare_registry(settings)
    if champion:
        out.print(f"model registry ready: champion is version {champion}")
    if settings.airflow_url:
        prepare_airflow(settings)
        out.print(f"Airflow ready at {settings.airflow_url}")
        if args.resume:
            resume_jobs(settings)
    elif args.resume:
        raise ValueError("--resume needs SCENE3D_AIRFLOW_URL: local jobs run inside `serve`")
    return 0


def add_prepare(sub: argparse._SubParsersAction) -> None:
    """Add the ``prepare`` command to ``sub``."""
    pp = sub.add_parser(
        "prepare", help="migrate the job store and create the first admin (no services started)"
    )
    pp.add_argument(
        "--resume", action="store_true", help="then restart unfinished jobs on the orchestrator"
    )
    pp.set_defaults(func=cmd_prepare)


def add_up(sub: argparse._SubParsersAction) -> None:
    """Add the ``up`` command to ``sub``."""
    upp = sub.add_parser("up", help="start the whole platform (MLflow, Airflow, Ray Serve)")
    upp.add_argument("--detach", action="store_true", help="return once everything is up")
    upp.set_defaults(func=cmd_up)


def add_watch(sub: argparse._SubParsersAction) -> None:
    """Add the ``watch`` command to ``sub``."""
    sub.add_parser(
        "watch", help="restart the platform's services that die (`up --detach` starts it)"
    ).set_defaults(func=cmd_watch)


def add_down(sub: argparse._SubParsersAction) -> None:
    """Add the ``down`` command to ``sub``."""
    sub.add_parser("down", help="stop everything `up` started").set_defaults(func=cmd_down)


def add_status(sub: argparse._SubParsersAction) -> None:
    """Add the ``status`` command to ``sub``."""
    sub.add_parser("status", help="show what runs").set_defaults(func=cmd_status)


def add_serve(sub: argparse._SubParsersAction) -> None:
    """Add the ``serve`` command to ``sub``."""
    sv = sub.add_parser("serve", help="run the API (embedded defaults) on 127.0.0.1:8000")
    sv.add_argument("--host", help="address to listen on (default: SCENE3D_API_HOST, 127.0.0.1)")
    sv.add_argument("--port", type=int, help="port (default: SCENE3D_API_PORT, 8000)")
    sv.set_defaults(func=cmd_serve)
