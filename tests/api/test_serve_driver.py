"""The Serve driver's connection to Ray: it waits for a head whose raylet is late."""

from __future__ import annotations

import pytest
import ray

from api import serve as driver


class _LateCluster:
    """ray.init that fails like a head without a registered raylet, then succeeds."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[str] = []

    def init(self, address: str, **_: object) -> None:
        self.calls.append(address)
        if len(self.calls) <= self.failures:
            raise ConnectionError("no raylet found on this node yet")


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch):
    def make(failures: int) -> _LateCluster:
        late = _LateCluster(failures)
        monkeypatch.setattr(ray, "init", late.init)
        monkeypatch.setattr(ray, "shutdown", lambda: None)
        return late

    return make


def test_connect_retries_until_the_raylet_is_up(cluster) -> None:
    late = cluster(failures=2)
    driver.connect("127.0.0.1:6380", timeout=5, pause=0.01)
    assert late.calls == ["127.0.0.1:6380"] * 3


def test_connect_gives_up_after_its_timeout(cluster) -> None:
    late = cluster(failures=10**6)
    with pytest.raises(ConnectionError, match="no raylet"):
        driver.connect("127.0.0.1:6380", timeout=0.05, pause=0.01)
    assert len(late.calls) >= 2
