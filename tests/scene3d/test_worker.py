"""scene3d.worker: the local worker's readiness and how it follows the champion, the
remote worker seen through a Serve handle, and joining a Ray cluster whose raylet is late."""

from __future__ import annotations

import pytest
import ray

from pipeline.errors import ReconstructionError
from pipeline.presets import load_preset
from scene3d import registry, worker
from scene3d.names import MODEL_NAME
from scene3d.served import ServedModel
from scene3d.settings import Settings
from scene3d.worker import LocalModelWorker, ModelNotReady, RemoteModelWorker


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


def test_without_a_registry_the_local_worker_serves_the_default_preset(tmp_path) -> None:
    good = LocalModelWorker(Settings(home=tmp_path))
    assert good.wait(30)
    status = good.status()
    assert status.ready and status.device.startswith(("cpu", "NVIDIA"))
    assert (status.model, status.version, status.note) == ("preset:sift", None, "")
    assert good.served().config == load_preset("sift")


def test_local_worker_with_a_broken_preset_says_why(tmp_path) -> None:
    bad = LocalModelWorker(Settings(home=tmp_path, default_preset="no-such-preset"))
    assert bad.wait(30)
    status = bad.status()
    assert not status.ready and "no-such-preset" in status.reason
    with pytest.raises(ModelNotReady, match="no-such-preset"):
        bad.served()


@pytest.fixture
def registry_settings(tmp_path, monkeypatch) -> Settings:
    monkeypatch.chdir(tmp_path)  # a sqlite:/// store keeps artifacts under ./mlruns
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    return Settings(home=tmp_path, mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")


@pytest.mark.slow
def test_the_worker_follows_the_champion_alias_without_a_restart(registry_settings) -> None:
    registry.ensure_champion(registry_settings)
    served = LocalModelWorker(registry_settings, poll_seconds=3600)  # polled by hand here
    assert served.wait(60)
    assert (served.status().model, served.status().version) == (MODEL_NAME, "1")
    fast = registry.register_version(registry_settings, load_preset("fast"))
    served.refresh()
    assert served.served().version == "1"  # a new version alone changes nothing
    registry.set_champion(registry_settings, fast)
    served.refresh()
    assert served.status().version == fast and served.served().config == load_preset("fast")
    served.close()


@pytest.mark.slow
def test_an_unreachable_registry_keeps_the_served_version_and_says_so(
    registry_settings, monkeypatch
) -> None:
    registry.ensure_champion(registry_settings)
    served = LocalModelWorker(registry_settings, poll_seconds=3600)
    assert served.wait(60)

    def gone(settings: Settings) -> str:
        raise registry.RegistryError("MLflow did not answer: connection refused")

    monkeypatch.setattr(registry, "champion_version", gone)
    served.refresh()
    status = served.status()
    assert status.ready and status.version == "1"
    assert status.note == (
        f"keeps serving {MODEL_NAME}/1: MLflow did not answer: connection refused"
    )
    assert served.served().version == "1"
    monkeypatch.undo()
    served.refresh()
    assert served.status().note == ""
    served.close()


def test_without_a_champion_the_worker_is_not_ready_and_says_why(registry_settings) -> None:
    served = LocalModelWorker(registry_settings, poll_seconds=3600)
    assert served.wait(60)
    status = served.status()
    assert not status.ready and "no 'champion' version yet" in status.reason
    served.close()


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
    """The methods of the worker deployment a Serve handle exposes."""

    def __init__(
        self, status: _Response, run_task: _Response, served: _Response | None = None
    ) -> None:
        self.status, self.run_task = _Method(status), _Method(run_task)
        self.served = _Method(served or _Response())


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


def test_remote_worker_hands_over_the_served_model_or_why_there_is_none() -> None:
    model = ServedModel(MODEL_NAME, "4", load_preset("fast"))
    handle = _Handle(_Response(), _Response(), _Response(model.to_dict()))
    assert RemoteModelWorker(handle).served() == model
    not_yet = _Response(error=_RayTaskError(ModelNotReady("no 'champion' version yet")))
    with pytest.raises(ModelNotReady, match="no 'champion'"):
        RemoteModelWorker(_Handle(_Response(), _Response(), not_yet)).served()
    gone = _Response(error=TimeoutError())
    with pytest.raises(ModelNotReady, match="unreachable: TimeoutError"):
        RemoteModelWorker(_Handle(_Response(), _Response(), gone)).served()
