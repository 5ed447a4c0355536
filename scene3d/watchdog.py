"""Keeping the embedded platform running: a service that dies is started again.

The watchdog looks at every service of the platform each few seconds (the foreground
``scene3d up`` runs it in its own loop; ``scene3d up --detach`` starts it as a service of
its own, ``scene3d watch``). A service whose process is gone is started again at once, with
a log line; one that dies again during its start-up, or does not become healthy in its
start timeout, is tried again after a delay that doubles each time (up to a minute), and
the count starts afresh once it has stayed up for a while. When a service comes back, the
services that must follow it (``Service.restart_after``: the Serve driver after the Ray
head) are restarted too. Nothing is started once ``scene3d down`` has begun.

Each look is quick and never waits for a start-up: starting services are checked again on
the next look, so Ctrl-C and ``scene3d down`` are noticed at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from scene3d.services import Service, Supervisor

WATCH_SECONDS = 2.0
"""How often the watchdog looks at the services."""
FIRST_DELAY = 2.0
"""Seconds before a service that failed to restart is tried again; doubled each time."""
MAX_DELAY = 60.0
"""The longest wait between two tries."""
STABLE_AFTER = 120.0
"""Seconds a restarted service must stay up for its failures to be forgotten."""


@dataclass
class _Watch:
    """What the watchdog remembers of one service."""

    failures: int = 0
    next_try: float = 0.0
    starting_since: float | None = None
    up_since: float | None = None


class Watchdog:
    """Restarts the services of one platform; :meth:`look` does one round."""

    def __init__(
        self,
        supervisor: Supervisor,
        services: Callable[[], list[Service]],
        log: Callable[[str], None] = print,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.supervisor = supervisor
        self.services = services
        """The platform's services in start order, built afresh for every restart (a
        service may take new free ports each time it starts)."""
        self.log = log
        self.clock = clock
        self._watch: dict[str, _Watch] = {}
        self._names: set[str] = set()

    def look(self) -> bool:
        """One round over every service; False once the platform is being stopped."""
        if self.supervisor.stopping():
            return False
        running = self.supervisor.running()
        if self._names and self._names <= running and not self._starting(tuple(self._names)):
            return True  # all well: no need to build the services (secrets, free ports)
        services = self.services()
        self._names = {service.name for service in services}
        for service in services:
            watch = self._watch.setdefault(service.name, _Watch())
            if watch.starting_since is not None:
                self._follow_start(service, watch)
            elif service.name in running:
                if watch.failures and self.clock() - (watch.up_since or 0) > STABLE_AFTER:
                    watch.failures = 0
            elif self._starting(service.restart_after):
                continue  # it is started again once what it follows is back
            elif self.clock() >= watch.next_try:
                self._restart(service, watch, "is not running")
        return True

    def run(self, stop: Callable[[float], bool]) -> None:
        """Look every :data:`WATCH_SECONDS` until ``stop(timeout)`` (an ``Event.wait``)
        is true or the platform is being stopped."""
        while not stop(WATCH_SECONDS) and self.look():
            pass

    def _starting(self, names: tuple[str, ...]) -> bool:
        return any(
            (watch := self._watch.get(name)) is not None and watch.starting_since is not None
            for name in names
        )

    def _restart(self, service: Service, watch: _Watch, why: str) -> None:
        attempt = watch.failures + 1
        self.log(f"watchdog: {service.name} {why}; starting it again (attempt {attempt})")
        if self.supervisor.start(service) is not None:
            watch.starting_since = self.clock()

    def _follow_start(self, service: Service, watch: _Watch) -> None:
        try:
            healthy = self.supervisor.healthy(service, since=watch.starting_since or 0.0)
        except RuntimeError as exc:
            watch.failures += 1
            watch.starting_since = None
            delay = min(MAX_DELAY, FIRST_DELAY * 2 ** (watch.failures - 1))
            watch.next_try = self.clock() + delay
            self.supervisor.stop(service.name)  # a start that hangs must not linger
            reason = str(exc).splitlines()[0]
            self.log(f"watchdog: {service.name} did not come back ({reason}); next try in "
                     f"{delay:.0f} s")  # fmt: skip
            return
        if not healthy:
            return
        took = self.clock() - (watch.starting_since or 0.0)
        watch.starting_since = None
        watch.up_since = self.clock()
        self.log(f"watchdog: {service.name} is back after {took:.0f} s")
        for follower in self.services():
            if service.name in follower.restart_after:
                self.supervisor.stop(follower.name)
                self._restart(
                    follower, self._watch.setdefault(follower.name, _Watch()),
                    f"follows {service.name}",
                )  # fmt: skip
