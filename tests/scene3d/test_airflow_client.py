"""The Airflow REST client against a fake Airflow (httpx.MockTransport), plus a closed port.

The fake answers like Airflow 3.3's REST API v2 where it matters to the client:
``POST /auth/token`` -> 201 ``{"access_token": <JWT with exp>}``, bearer tokens on
``/api/v2``, 409 for a repeated ``dag_run_id``, 404 for an unknown DAG, a strict
trigger body in which ``logical_date`` is required.
"""

from __future__ import annotations

import json
import re
import socket
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest

from scene3d.airflow_client import AirflowOrchestrator
from scene3d.names import reconstruction_run_id
from scene3d.orchestrator import Orchestrator, OrchestratorUnavailable

BASE = "http://airflow.test"
USER, PASSWORD = "scene3d", "s3cret-pass"
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.~:+-]+$")  # Airflow's allowed_run_id_pattern


class FakeAirflow:
    """Just enough of Airflow's REST API v2, with knobs to make it misbehave."""

    def __init__(self) -> None:
        self.dags = {"reconstruction_dag": True, "experiment_pipeline_dag": True}  # -> paused
        self.runs: dict[tuple[str, str], dict[str, Any]] = {}
        self.pools: dict[str, dict[str, Any]] = {}
        self.valid_tokens: set[str] = set()
        self.token_lifetime = 3600.0
        self.token_requests = 0
        self.requests: list[httpx.Request] = []
        self.fail_next: list[int] = []  # status codes answered before behaving
        self.health_status = "healthy"

    # --- helpers -------------------------------------------------------------------------

    def revoke_tokens(self) -> None:
        """What an api-server restart with another jwt_secret looks like to a client."""
        self.valid_tokens.clear()

    def calls(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path == path]

    @staticmethod
    def _json(status: int, body: Any) -> httpx.Response:
        return httpx.Response(status, json=body)

    # --- the handler ---------------------------------------------------------------------

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.fail_next:
            status = self.fail_next.pop(0)
            return self._json(status, {"detail": f"injected failure {status}"})
        path = request.url.path
        if path == "/auth/token" and request.method == "POST":
            return self._token(request)
        if path == "/api/v2/monitor/health":
            return self._json(
                200,
                {
                    "metadatabase": {"status": "healthy"},
                    "scheduler": {"status": self.health_status},
                    "triggerer": {"status": None},
                },
            )
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.valid_tokens:
            return self._json(401, {"detail": "Invalid JWT token"})
        return self._api(request)

    def _token(self, request: httpx.Request) -> httpx.Response:
        self.token_requests += 1
        body = json.loads(request.content)
        if body != {"username": USER, "password": PASSWORD}:
            return self._json(401, {"detail": "Invalid credentials"})
        claims = {
            "sub": USER,
            "exp": int(time.time() + self.token_lifetime),
            "n": len(self.requests),
        }
        token = jwt.encode(claims, "fake-airflow-signing-key-0123456789abcdef", algorithm="HS256")
        self.valid_tokens.add(token)
        return self._json(201, {"access_token": token})

    def _api(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.removeprefix("/api/v2/").split("/")
        body = json.loads(request.content) if request.content else None
        if parts[0] == "dags" and len(parts) >= 2 and parts[1] not in self.dags:
            return self._json(404, {"detail": f"Dag with dag_id: '{parts[1]}' not found"})
        if parts[0] == "dags" and len(parts) == 3 and request.method == "POST":
            return self._trigger(parts[1], body)
        if parts[0] == "dags" and len(parts) == 3 and request.method == "GET":
            states = request.url.params.get_list("state")
            runs = [r for (d, _), r in self.runs.items() if d == parts[1] and r["state"] in states]
            return self._json(200, {"dag_runs": runs, "total_entries": len(runs)})
        if parts[0] == "dags" and len(parts) == 4 and request.method == "GET":
            run = self.runs.get((parts[1], parts[3]))
            if run is None:
                return self._json(404, {"detail": "DagRun not found"})
            return self._json(200, run)
        if parts[0] == "dags" and len(parts) == 2 and request.method == "PATCH":
            if request.url.params.get("update_mask") != "is_paused" or set(body) != {"is_paused"}:
                return self._json(400, {"detail": "Only `is_paused` can be updated"})
            self.dags[parts[1]] = body["is_paused"]
            return self._json(200, {"dag_id": parts[1], "is_paused": body["is_paused"]})
        if parts[0] == "pools":
            return self._pool(request.method, parts[1] if len(parts) > 1 else None, body)
        return self._json(404, {"detail": "Not Found"})

    def _trigger(self, dag_id: str, body: dict[str, Any]) -> httpx.Response:
        allowed = {"dag_run_id", "logical_date", "conf", "note", "run_after"}
        if "logical_date" not in body or set(body) - allowed:
            return self._json(422, {"detail": [{"msg": "Field required", "loc": ["logical_date"]}]})
        run_id = body["dag_run_id"]
        if (dag_id, run_id) in self.runs:
            return self._json(409, {"detail": "Unique constraint violation"})
        run = {"dag_id": dag_id, "dag_run_id": run_id, "conf": body["conf"], "state": "queued"}
        self.runs[(dag_id, run_id)] = run
        return self._json(200, run)

    def _pool(self, method: str, name: str | None, body: Any) -> httpx.Response:
        if method == "POST":
            if body["name"] in self.pools:
                return self._json(409, {"detail": "Unique constraint violation"})
            self.pools[body["name"]] = dict(body)
            return self._json(201, self.pools[body["name"]])
        if method == "PATCH":
            if name not in self.pools:
                return self._json(404, {"detail": f"The Pool with name: `{name}` was not found"})
            if body.get("pool") != name or "include_deferred" not in body:  # as Airflow 3.3
                return self._json(422, {"detail": [{"msg": "Field required"}]})
            self.pools[name].update({k: v for k, v in body.items() if k != "pool"})
            return self._json(200, self.pools[name])
        return self._json(405, {"detail": "Method Not Allowed"})


@pytest.fixture
def fake() -> FakeAirflow:
    return FakeAirflow()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(fake: FakeAirflow, sleeps: list[float]) -> AirflowOrchestrator:
    return AirflowOrchestrator(
        BASE, USER, PASSWORD, transport=httpx.MockTransport(fake), sleep=sleeps.append
    )


def _job_id() -> str:
    return str(uuid.uuid4())


def test_is_an_orchestrator(client: AirflowOrchestrator) -> None:
    orchestrator: Orchestrator = client  # the protocol the API depends on
    assert callable(orchestrator.trigger_reconstruction)
    assert PASSWORD not in repr(client)


def test_trigger_sends_the_documented_payload(client, fake) -> None:
    job_id = _job_id()
    client.trigger_reconstruction(job_id)
    (call,) = fake.calls("POST", "/api/v2/dags/reconstruction_dag/dagRuns")
    assert json.loads(call.content) == {
        "dag_run_id": f"job_{job_id}",
        "logical_date": None,
        "conf": {"job_id": job_id},
    }
    assert call.headers["authorization"].startswith("Bearer ")
    assert reconstruction_run_id(job_id) == f"job_{job_id}"
    assert RUN_ID_PATTERN.match(reconstruction_run_id(job_id))


def test_token_is_cached_between_calls(client, fake) -> None:
    for _ in range(3):
        client.trigger_reconstruction(_job_id())
    assert fake.token_requests == 1
    assert len(fake.runs) == 3


def test_token_close_to_expiry_is_renewed_before_use(client, fake) -> None:
    fake.token_lifetime = 30  # under the client's 60 s safety margin
    client.trigger_reconstruction(_job_id())
    client.trigger_reconstruction(_job_id())
    assert fake.token_requests == 2


def test_401_fetches_a_new_token_once_and_retries(client, fake) -> None:
    client.trigger_reconstruction(_job_id())
    fake.revoke_tokens()
    job_id = _job_id()
    client.trigger_reconstruction(job_id)
    assert fake.token_requests == 2
    assert ("reconstruction_dag", f"job_{job_id}") in fake.runs


def test_wrong_password_is_a_clear_error(fake, sleeps) -> None:
    client = AirflowOrchestrator(
        BASE, USER, "wrong", transport=httpx.MockTransport(fake), sleep=sleeps.append
    )
    with pytest.raises(OrchestratorUnavailable, match="refused the credentials"):
        client.trigger_reconstruction(_job_id())
    assert fake.token_requests == 1  # a 4xx is not retried


def test_409_means_already_started(client, fake) -> None:
    job_id = _job_id()
    client.trigger_reconstruction(job_id)
    client.trigger_reconstruction(job_id)  # a client retry: no error, no second run
    assert len(fake.calls("POST", "/api/v2/dags/reconstruction_dag/dagRuns")) == 2
    assert list(fake.runs) == [("reconstruction_dag", f"job_{job_id}")]


def test_503_is_retried_with_exponential_backoff(client, fake, sleeps) -> None:
    client.trigger_reconstruction(_job_id())  # token cached first
    fake.fail_next = [503, 503]
    job_id = _job_id()
    client.trigger_reconstruction(job_id)
    assert sleeps == [0.5, 1.0]
    assert ("reconstruction_dag", f"job_{job_id}") in fake.runs


def test_persistent_5xx_ends_in_orchestrator_unavailable(client, fake, sleeps) -> None:
    fake.fail_next = [503] * 10
    with pytest.raises(OrchestratorUnavailable) as info:
        client.trigger_reconstruction(_job_id())
    assert sleeps == [0.5, 1.0, 2.0]
    assert len(fake.requests) == 4
    message = str(info.value)
    assert "503" in message and "4 attempts" in message
    assert "Traceback" not in message and "\n" not in message
    assert info.value.__cause__ is None and info.value.__context__ is None  # no chained trace


def test_timeouts_are_retried_then_reported(sleeps) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)

    client = AirflowOrchestrator(
        BASE, USER, PASSWORD, retries=2, transport=httpx.MockTransport(handler), sleep=sleeps.append
    )
    with pytest.raises(OrchestratorUnavailable, match="timed out"):
        client.trigger_reconstruction(_job_id())
    assert sleeps == [0.5, 1.0]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def test_unreachable_airflow_fails_fast_with_a_short_message() -> None:
    client = AirflowOrchestrator(
        f"http://127.0.0.1:{_closed_port()}", USER, PASSWORD, timeout=2, backoff=0.01
    )
    start = time.monotonic()
    with pytest.raises(OrchestratorUnavailable) as info:
        client.trigger_reconstruction(_job_id())
    assert time.monotonic() - start < 2
    assert "cannot connect" in str(info.value)
    assert "Traceback" not in str(info.value)


def test_unknown_dag_is_reported_by_name(client, fake) -> None:
    del fake.dags["reconstruction_dag"]
    with pytest.raises(
        OrchestratorUnavailable, match="DAG reconstruction_dag not found in Airflow"
    ):
        client.trigger_reconstruction(_job_id())


def test_other_4xx_carries_airflow_detail(client, fake) -> None:
    client.trigger_reconstruction(_job_id())
    fake.fail_next = [400]
    with pytest.raises(OrchestratorUnavailable, match=r"HTTP 400.*injected failure 400"):
        client.trigger_reconstruction(_job_id())


def test_resume_triggers_each_unfinished_job_once(client, fake, tmp_path) -> None:
    from scene3d.store import JobStore

    with JobStore(f"sqlite:///{tmp_path / 's.db'}") as store:
        store.migrate()
        owner = store.create_user("owner", "not-a-real-hash")
        lost, finished = _job_id(), _job_id()
        for job_id in (lost, finished):
            store.create_job(job_id, owner.id, "d", "s")
        store.mark_failed(finished, "boom")
        assert client.resume(store) == [lost]
        assert client.resume(store) == [lost]  # 409 the second time: no new run
    assert list(fake.runs) == [("reconstruction_dag", reconstruction_run_id(lost))]


def test_trigger_retrain_returns_a_valid_new_run_id(client, fake) -> None:
    run_id = client.trigger_retrain()
    assert run_id.startswith("manual__retrain_") and RUN_ID_PATTERN.match(run_id)
    assert ("experiment_pipeline_dag", run_id) in fake.runs
    assert fake.runs[("experiment_pipeline_dag", run_id)]["conf"] == {}


def test_a_retrain_while_one_is_queued_or_running_answers_with_that_run(client, fake) -> None:
    first = client.trigger_retrain()
    assert client.trigger_retrain() == first
    fake.runs[("experiment_pipeline_dag", first)]["state"] = "running"
    assert client.trigger_retrain() == first
    assert len(fake.runs) == 1
    fake.runs[("experiment_pipeline_dag", first)]["state"] = "success"
    second = client.trigger_retrain()
    assert second != first and len(fake.runs) == 2


def test_retrain_without_the_dag(client, fake) -> None:
    del fake.dags["experiment_pipeline_dag"]
    with pytest.raises(OrchestratorUnavailable, match="DAG experiment_pipeline_dag not found"):
        client.trigger_retrain()


def test_unpause(client, fake) -> None:
    client.unpause("reconstruction_dag")
    assert fake.dags["reconstruction_dag"] is False
    with pytest.raises(OrchestratorUnavailable, match="DAG nope not found"):
        client.unpause("nope")


def test_ensure_pool_creates_then_updates(client, fake) -> None:
    client.ensure_pool("scene3d_gpu", 1, "GPU work")
    assert fake.pools["scene3d_gpu"]["slots"] == 1
    client.ensure_pool("scene3d_gpu", 3, "more GPUs")
    assert fake.pools["scene3d_gpu"] == {
        "name": "scene3d_gpu",
        "slots": 3,
        "description": "more GPUs",
        "include_deferred": False,
    }
    assert len(fake.calls("POST", "/api/v2/pools")) == 1


def test_dag_run_state(client, fake) -> None:
    job_id = _job_id()
    assert client.dag_run_state("reconstruction_dag", f"job_{job_id}") is None
    client.trigger_reconstruction(job_id)
    assert client.dag_run_state("reconstruction_dag", f"job_{job_id}") == "queued"
    fake.runs[("reconstruction_dag", f"job_{job_id}")]["state"] = "success"
    assert client.dag_run_state("reconstruction_dag", f"job_{job_id}") == "success"


def test_wait_until_healthy(client, fake) -> None:
    assert client.wait_until_healthy(timeout=1)["scheduler"]["status"] == "healthy"
    fake.health_status = "unhealthy"
    start = time.monotonic()
    with pytest.raises(OrchestratorUnavailable, match="not healthy yet: scheduler"):
        client.wait_until_healthy(timeout=0.3)
    assert time.monotonic() - start < 2
    assert fake.token_requests == 0  # the health endpoint needs no token
