"""The watchdog starts again a service that dies (with what its session left killed),
backs off from one that keeps failing, restarts the services that follow a restarted one,
and starts nothing once `scene3d down` has begun. Real processes, a fake clock."""

from __future__ import annotations

import itertools
import os
import signal
import sys
import time

import psutil
import pytest

from scene3d.services import Service, Supervisor
from scene3d.watchdog import FIRST_DELAY, Watchdog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _sleeper(name: str, **options) -> Service:
    # The leader keeps a child in its session: what a dead leader leaves behind.
    script = "sleep 600 & exec sleep 600"
    return Service(name, ["sh", "-c", script], env={"PATH": os.environ["PATH"]}, **options)


def _crasher(name: str) -> Service:
    return Service(name, [sys.executable, "-c", "raise SystemExit(3)"], env={}, start_timeout=5)


def _pid(supervisor: Supervisor, name: str) -> int:
    return supervisor._load()["services"][name]["pid"]


def _gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def _wait_dead(supervisor: Supervisor, name: str) -> None:
    deadline = time.monotonic() + 5
    while name in supervisor.running() and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture
def supervisor(tmp_path):
    supervisor = Supervisor(tmp_path)
    yield supervisor
    supervisor.stop_all()


def test_a_killed_service_is_started_again_and_its_leftovers_killed(supervisor) -> None:
    services = [_sleeper("a"), _sleeper("b")]
    for service in services:
        supervisor.start(service)
    old = _pid(supervisor, "a")
    (child,) = psutil.Process(old).children()
    lines: list[str] = []
    watchdog = Watchdog(supervisor, lambda: services, lines.append, Clock())
    assert watchdog.look() and lines == []  # all running: nothing to do

    os.kill(old, signal.SIGKILL)
    _wait_dead(supervisor, "a")
    assert watchdog.look()
    new = _pid(supervisor, "a")
    assert new != old and supervisor.running() == {"a", "b"}
    assert _gone(child.pid), "the dead leader's child still holds on"
    assert lines == ["watchdog: a is not running; starting it again (attempt 1)"]
    watchdog.look()
    assert lines[-1] == "watchdog: a is back after 0 s"
    assert supervisor.start(services[0]) is None  # running: never started twice


def test_a_service_that_keeps_failing_is_retried_with_growing_delays(supervisor) -> None:
    clock = Clock()
    services = [_crasher("c")]
    supervisor.start(services[0])
    lines: list[str] = []
    watchdog = Watchdog(supervisor, lambda: services, lines.append, clock)
    starts = []
    for _ in range(40):  # 40 looks, 0.5 s of fake time apart
        _wait_dead(supervisor, "c")
        before = supervisor._load()["services"].get("c", {}).get("pid")
        watchdog.look()
        after = supervisor._load()["services"].get("c", {}).get("pid")
        if after and after != before:
            starts.append(clock.now)
        clock.now += 0.5
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # each failed start doubles the wait: 2, 4, 8 s (plus the look that saw it fail)
    assert len(starts) >= 4
    assert gaps[:3] == [FIRST_DELAY + 0.5, 2 * FIRST_DELAY + 0.5, 4 * FIRST_DELAY + 0.5]
    assert any("did not come back (c exited during start-up" in line for line in lines)
    assert any("next try in 4 s" in line for line in lines)


def test_a_restarted_service_takes_its_followers_with_it(supervisor) -> None:
    services = [_sleeper("head"), _sleeper("app", restart_after=("head",))]
    for service in services:
        supervisor.start(service)
    app = _pid(supervisor, "app")
    watchdog = Watchdog(supervisor, lambda: services, lambda _: None, Clock())
    os.kill(_pid(supervisor, "head"), signal.SIGKILL)
    _wait_dead(supervisor, "head")
    watchdog.look()  # head started again
    assert _pid(supervisor, "app") == app
    watchdog.look()  # head is back: app follows
    assert _pid(supervisor, "app") != app and _gone(app)
    assert supervisor.running() == {"head", "app"}


def test_nothing_is_started_once_down_has_begun(supervisor) -> None:
    services = [_sleeper("a")]
    supervisor.start(services[0])
    watchdog = Watchdog(supervisor, lambda: services, lambda _: None, Clock())
    state = supervisor._load()
    state["stopping"] = True  # what `scene3d down` records before it signals anything
    supervisor._save(state)
    os.kill(_pid(supervisor, "a"), signal.SIGKILL)
    _wait_dead(supervisor, "a")
    assert watchdog.look() is False
    assert supervisor.start(services[0]) is None
    assert supervisor.running() == set()
    supervisor.stop_all()
    assert watchdog.look() is False  # stopped: the state is gone
