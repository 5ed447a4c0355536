"""scene3d.worker: the local worker's readiness, the remote worker seen through a Serve
handle, and joining a Ray cluster whose raylet is late."""

from __future__ import annotations

import pytest
import ray

from pipeline.errors import ReconstructionError
from scene3d import worker
from scene3d.worker import LocalModelWorker, RemoteModelWorker


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
        monkeypatch.setattr(ray, "is_initialized", lambda: False)
        monkeypatch.setattr(ray, "shutdown", lambda: None)
        return late

    return make


def test_connect_retries_until_the_raylet_is_up(cluster) -> None:
    late = cluster(failures=2)
    worker.connect_ray("127.0.0.1:6380", timeout=5, pause=0.01)
    assert late.calls == ["127.0.0.1:6380"] * 3


def test_connect_gives_up_after_its_timeout(cluster) -> None:
    late = cluster(failures=10**6)
    with pytest.raises(ConnectionError, match="no raylet"):
        worker.connect_ray("127.0.0.1:6380", timeout=0.05, pause=0.01)
    assert len(late.calls) >= 2


def test_local_worker_is_ready_once_its_preset_loaded() -> None:
    good = LocalModelWorker("sift")
    assert good.wait(30)
    status = good.status()
    assert status.ready and status.device.startswith(("cpu", "NVIDIA"))


def test_local_worker_with_a_broken_preset_says_why() -> None:
    bad = LocalModelWorker("no-such-preset")
    assert bad.wait(30)
    status = bad.status()
    assert not status.ready and "no-such-preset" in status.reason


class _Response:
    def __init__(self, result=None, error: BaseException | None = None) -> None:
        self._result, self._error, self.cancelled = result, error, False

    def result(self, timeout_s: float | None = None):
        if self._error is not None:
            raise self._error
        return self._result

    def cancel(self) -> None:
        self.cancelled = True


class _Method:
    def __init__(self, response: _Response) -> None:
        self.response = response
        self.calls: list[tuple] = []

    def remote(self, *args):
        self.calls.append(args)
        return self.response


class _Handle:
    """The two methods of the worker deployment a Serve handle exposes."""

    def __init__(self, status: _Response, run_task: _Response) -> None:
        self.status, self.run_task = _Method(status), _Method(run_task)


class _RayTaskError(Exception):
    """Like Ray's wrapper of a remote exception: the original is in ``cause``."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__("remote traceback ...")
        self.cause = cause


def test_remote_worker_reports_an_unreachable_deployment_as_not_ready() -> None:
    remote = RemoteModelWorker(_Handle(_Response(error=TimeoutError()), _Response()))
    status = remote.status()
    assert not status.ready and status.reason == "model worker unreachable: TimeoutError"


def test_remote_worker_reports_the_deployment_status() -> None:
    handle = _Handle(_Response({"ready": True, "device": "cpu (2 cores)"}), _Response())
    assert RemoteModelWorker(handle).status().device == "cpu (2 cores)"


def test_remote_task_raises_the_engines_own_error_and_cancels_the_call() -> None:
    failure = _Response(error=_RayTaskError(ReconstructionError("nothing matched")))
    handle = _Handle(_Response(), failure)
    with pytest.raises(ReconstructionError, match="nothing matched"):
        RemoteModelWorker(handle).run_task("matching", "job-1")
    assert handle.run_task.calls == [("matching", "job-1")]
    assert failure.cancelled
