"""The :class:`~scene3d.orchestrator.Orchestrator` backed by Airflow's REST API v2.

The API hands every job to ``reconstruction_dag`` through this client. It is written
for the ways a remote call goes wrong, because the API must answer 502 with a short
message (never a stack trace) when Airflow cannot take the job:

- Airflow 3 wants a bearer token from ``POST /auth/token``; it is cached until shortly
  before its ``exp`` and fetched again once when a call answers 401 (the api-server
  restarted with another key, or the token expired early).
- Connection errors, timeouts and 5xx answers are retried with exponential backoff
  (0.5 s, 1 s, 2 s); then :class:`OrchestratorUnavailable` is raised.
- A reconstruction run's id is derived from the job id (``job_<id>``), so a repeated
  trigger (a client retry, a restarted API) gets 409 from Airflow and never starts a
  second run: 409 is treated as "already started".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import jwt

from scene3d.names import EXPERIMENT_DAG, RECONSTRUCTION_DAG, reconstruction_run_id
from scene3d.orchestrator import OrchestratorUnavailable, unfinished_jobs

if TYPE_CHECKING:
    from scene3d.store import JobStore

log = logging.getLogger(__name__)

TOKEN_MARGIN_SECONDS = 60.0
"""A cached token is replaced this long before it expires (clock skew, slow calls)."""
TOKEN_FALLBACK_SECONDS = 600.0
"""Lifetime assumed for a token whose ``exp`` cannot be read."""


def _detail(resp: httpx.Response) -> str:
    """Airflow's error text (``detail``), short enough for an API error message."""
    try:
        body = resp.json()
    except ValueError:
        text = resp.text.strip()
    else:
        detail = body.get("detail", body) if isinstance(body, dict) else body
        if isinstance(detail, list):  # FastAPI validation errors
            text = "; ".join(
                str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail
            )
        else:
            text = str(detail)
    text = " ".join(text.split())
    return (text[:300] + "...") if len(text) > 300 else text or f"HTTP {resp.status_code}"


class AirflowOrchestrator:
    """Starts ``reconstruction_dag`` and ``experiment_pipeline_dag`` runs in Airflow.

    Thread-safe: one instance is shared by the API's request handlers (httpx's
    ``Client`` is thread-safe; the token cache has its own lock).

    ``transport`` replaces the network in tests (``httpx.MockTransport``); ``sleep``
    lets tests skip the backoff waits.
    """

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        timeout: float = 10,
        retries: int = 3,
        *,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._username = username
        self._password = password
        self.retries = max(0, retries)
        self.backoff = backoff
        self._sleep = sleep
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)
        self._token: str | None = None
        self._token_expires = 0.0  # time.monotonic() deadline, margin already taken off
        self._token_lock = threading.Lock()
        self._retrain_lock = threading.Lock()

    def __repr__(self) -> str:  # never shows the password
        return f"AirflowOrchestrator({self.base_url!r}, user={self._username!r})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> AirflowOrchestrator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transport: retries and tokens -----------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        token: str | None = None,
    ) -> httpx.Response:
        """One request with retries on connection errors, timeouts and 5xx."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(self.backoff * 2 ** (attempt - 1))
            try:
                resp = self._client.request(method, path, json=json, params=params, headers=headers)
            except httpx.TimeoutException:
                problem = "timed out"
            except httpx.TransportError as exc:
                problem = f"cannot connect ({type(exc).__name__})"
            else:
                if resp.status_code < 500:
                    return resp
                problem = f"HTTP {resp.status_code}: {_detail(resp)}"
            log.warning(
                "Airflow %s %s: %s (attempt %d/%d)",
                method, path, problem, attempt + 1, self.retries + 1,
            )  # fmt: skip
        raise OrchestratorUnavailable(
            f"Airflow at {self.base_url} is unavailable: {problem} "
            f"(after {self.retries + 1} attempts)"
        )

    def _fetch_token(self) -> str:
        resp = self._send(
            "POST", "/auth/token", json={"username": self._username, "password": self._password}
        )
        if resp.status_code in (401, 403):
            raise OrchestratorUnavailable(
                f"Airflow refused the credentials of user {self._username!r}"
            )
        if resp.status_code not in (200, 201):
            raise OrchestratorUnavailable(f"Airflow token request failed: {_detail(resp)}")
        try:
            token = str(resp.json()["access_token"])
        except (ValueError, KeyError, TypeError):
            raise OrchestratorUnavailable("Airflow token answer has no access_token") from None
        lifetime = TOKEN_FALLBACK_SECONDS
        try:  # reading exp only; Airflow verifies the signature, we do not hold its key
            claims = jwt.decode(token, options={"verify_signature": False})
            lifetime = float(claims["exp"]) - time.time()
        except (jwt.PyJWTError, KeyError, TypeError, ValueError):
            pass
        self._token_expires = time.monotonic() + lifetime - TOKEN_MARGIN_SECONDS
        self._token = token
        return token

    def _get_token(self, *, fresh: bool = False) -> str:
        with self._token_lock:
            if fresh or self._token is None or time.monotonic() >= self._token_expires:
                return self._fetch_token()
            return self._token

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """An authenticated request; on 401 the token is fetched again, once."""
        token = self._get_token()
        resp = self._send(method, path, json=json, params=params, token=token)
        if resp.status_code == 401:
            log.info("Airflow answered 401; fetching a new token")
            with self._token_lock:
                if self._token == token:  # another thread may have refreshed already
                    self._token = None
            resp = self._send(method, path, json=json, params=params, token=self._get_token())
            if resp.status_code == 401:
                raise OrchestratorUnavailable("Airflow rejected a freshly issued access token")
        return resp

    @staticmethod
    def _fail(
        resp: httpx.Response, what: str, dag_id: str | None = None
    ) -> OrchestratorUnavailable:
        if resp.status_code == 404 and dag_id is not None:
            return OrchestratorUnavailable(
                f"DAG {dag_id} not found in Airflow (not parsed yet, or a wrong DAGs folder)"
            )
        return OrchestratorUnavailable(f"{what} failed (HTTP {resp.status_code}): {_detail(resp)}")

    # --- Orchestrator protocol -------------------------------------------------------------

    def _trigger(self, dag_id: str, run_id: str, conf: dict[str, Any]) -> bool:
        """True when the run was created, False when it already existed (409)."""
        resp = self._call(
            "POST",
            f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns",
            # logical_date is required by Airflow 3 (null: the run has no data interval).
            json={"dag_run_id": run_id, "logical_date": None, "conf": conf},
        )
        if resp.status_code == 409:
            log.info("Airflow run %s of %s already exists; not starting another", run_id, dag_id)
            return False
        if resp.status_code not in (200, 201):
            raise self._fail(resp, f"triggering {dag_id}", dag_id)
        log.info("triggered Airflow run %s of %s", run_id, dag_id)
        return True

    def trigger_reconstruction(self, job_id: str) -> None:
        """Start ``reconstruction_dag`` for a stored job; a repeated call changes nothing."""
        self._trigger(RECONSTRUCTION_DAG, reconstruction_run_id(job_id), {"job_id": job_id})

    def trigger_retrain(self) -> str:
        """Start ``experiment_pipeline_dag`` and return the run's id; while a run is queued
        or running, return that one instead of starting a second."""
        with self._retrain_lock:  # two requests at once to this API process: one run
            active = self.active_runs(EXPERIMENT_DAG)
            if active:
                log.info("retraining already under way in run %s", active[0])
                return active[0]
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            run_id = f"manual__retrain_{stamp}"
            self._trigger(EXPERIMENT_DAG, run_id, {})
            return run_id

    def active_runs(self, dag_id: str) -> list[str]:
        """Ids of the runs of ``dag_id`` that are queued or running, oldest first."""
        resp = self._call(
            "GET",
            f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns",
            params={"state": ["queued", "running"], "order_by": "run_after"},
        )
        if resp.status_code == 404:
            raise self._fail(resp, f"listing runs of {dag_id}", dag_id)
        if resp.status_code != 200:
            raise self._fail(resp, f"listing runs of {dag_id}")
        return [run["dag_run_id"] for run in resp.json().get("dag_runs", [])]

    # --- operations used at start-up and by tests ---------------------------------------

    def resume(self, store: JobStore) -> list[str]:
        """Trigger every unfinished job again: a job whose trigger was lost (the API stopped
        between writing the job and calling Airflow) gets its run; the others answer 409."""
        jobs = unfinished_jobs(store)
        for job_id in jobs:
            self.trigger_reconstruction(job_id)
        return jobs

    def unpause(self, dag_id: str) -> None:
        """Unpause a DAG (new DAGs start paused, so nothing runs before the platform is up)."""
        resp = self._call(
            "PATCH",
            f"/api/v2/dags/{quote(dag_id, safe='')}",
            json={"is_paused": False},
            params={"update_mask": "is_paused"},
        )
        if resp.status_code != 200:
            raise self._fail(resp, f"unpausing {dag_id}", dag_id)

    def ensure_pool(self, name: str, slots: int, description: str = "") -> None:
        """Create the pool, or set its slots and description when it exists."""
        path = f"/api/v2/pools/{quote(name, safe='')}"
        # Airflow 3.3 validates a pool PATCH as a whole pool: the name (key "pool") and
        # include_deferred are required even though they do not change; POST names it "name".
        fields = {"slots": slots, "description": description, "include_deferred": False}
        patch = {"pool": name, **fields}
        resp = self._call("PATCH", path, json=patch)
        if resp.status_code == 404:
            resp = self._call("POST", "/api/v2/pools", json={"name": name, **fields})
            if resp.status_code == 409:  # created meanwhile by another starter
                resp = self._call("PATCH", path, json=patch)
        if resp.status_code not in (200, 201):
            raise self._fail(resp, f"setting pool {name}")

    def dag_run_state(self, dag_id: str, run_id: str) -> str | None:
        """State of a run (``queued``, ``running``, ``success``, ``failed``); None if unknown."""
        resp = self._call(
            "GET", f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"
        )
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise self._fail(resp, f"reading run {run_id} of {dag_id}")
        state = resp.json().get("state")
        return str(state) if state is not None else None

    def health(self) -> dict[str, Any]:
        """Airflow's health document (no token needed): component -> {"status": ...}."""
        resp = self._send("GET", "/api/v2/monitor/health")
        if resp.status_code != 200:
            raise self._fail(resp, "health check")
        return resp.json()

    def wait_until_healthy(
        self, timeout: float = 60, components: tuple[str, ...] = ("metadatabase", "scheduler")
    ) -> dict[str, Any]:
        """Poll the health endpoint until ``components`` are healthy (start-up of the stack)."""
        deadline = time.monotonic() + timeout
        problem = "no answer yet"
        while True:
            try:
                resp = self._client.get("/api/v2/monitor/health")
            except httpx.HTTPError as exc:
                problem = f"cannot connect ({type(exc).__name__})"
            else:
                if resp.status_code == 200:
                    health = resp.json()
                    sick = [
                        c for c in components if (health.get(c) or {}).get("status") != "healthy"
                    ]
                    if not sick:
                        return health
                    problem = f"not healthy yet: {', '.join(sick)}"
                else:
                    problem = f"HTTP {resp.status_code}"
            if time.monotonic() >= deadline:
                raise OrchestratorUnavailable(
                    f"Airflow at {self.base_url} not healthy after {timeout:g} s: {problem}"
                )
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
