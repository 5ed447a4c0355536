"""Prometheus metrics, one registry per app.

Request counters are counted by this process. Everything that describes jobs is
read from the job store at scrape time by :class:`JobStoreCollector`, and the scheduled
drift check's verdict from its state file, so several API replicas and restarts all
report the same values.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from fastapi import FastAPI
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from drift.report import SEVERITY_LEVELS
from scene3d.drift_monitor import LATEST_FILE, read_state
from scene3d.settings import Settings
from scene3d.store import JobStore
from scene3d.worker import ModelWorker

# ``*_created`` timestamps double the series count and no dashboard reads them.
disable_created_metrics()

LATENCY_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, float("inf"))
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, float("inf"))


class JobStoreCollector(Collector):
    """Job metrics computed from the store on every scrape."""

    def __init__(self, store: JobStore, worker: ModelWorker, settings: Settings) -> None:
        self.store = store
        self.worker = worker
        self.settings = settings

    def collect(self) -> Iterable[Metric]:
        finite = [b for b in LATENCY_BUCKETS if b != float("inf")]
        counts, total, seconds = self.store.duration_histogram(finite)
        buckets = [(str(b), c) for b, c in zip(finite, counts, strict=True)]
        yield HistogramMetricFamily(
            "inference_latency_seconds",
            "End-to-end reconstruction wall-clock time of finished jobs",
            buckets=[*buckets, ("+Inf", total)],
            sum_value=seconds,
        )
        latest = self.store.latest_success()
        yield _gauge(
            "registered_images_ratio",
            "Fraction of images placed in the last reconstruction",
            (latest.registration_rate or 0.0) if latest else 0.0,
        )
        yield _gauge(
            "active_jobs_total",
            "Number of currently running reconstruction jobs",
            self.store.count_active_jobs(),
        )
        status = self.worker.status()
        yield _gauge(
            "model_server_ready", "1 if the GPU worker is ready, 0 otherwise", status.ready
        )
        served = GaugeMetricFamily(
            "model_served_info", "The model the worker serves (value 1)", labels=["model"]
        )
        served.add_metric([status.model or "unknown"], 1.0)
        yield served
        yield _gauge(
            "drift_severity_level",
            "Drift severity of the last reconstruction: -1 unknown, 0 low, 1 medium, 2 high",
            SEVERITY_LEVELS.get(latest.drift_severity, 0.0) if latest else 0.0,
        )
        window = read_state(self.settings, LATEST_FILE) or {}
        yield _gauge(
            "drift_window_severity_level",
            "Severity of the latest scheduled drift check (drift_detection_dag): "
            "-1 unknown or none yet, 0 low, 1 medium, 2 high",
            SEVERITY_LEVELS.get(window.get("severity", "unknown"), -1.0),
        )
        yield _gauge(
            "drift_window_share_drifted",
            "Share of the drifted checks in the latest scheduled drift check",
            window.get("share_drifted", 0.0),
        )
        yield _gauge(
            "drift_window_checked_timestamp_seconds",
            "When the latest scheduled drift check ran (0: never)",
            window.get("checked_at", 0.0),
        )
        yield _gauge(
            "data_valid_images_total",
            "Number of valid images in the current dataset",
            (latest.n_valid_images or 0) if latest else 0,
        )


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=float(value))


class ApiMetrics:
    """The app's own registry with request counters and the store collector."""

    def __init__(self, store: JobStore, worker: ModelWorker, settings: Settings) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "api_requests",
            "Total HTTP requests labelled by method, endpoint, and status",
            ["method", "endpoint", "status"],
            registry=self.registry,
        )
        self.errors = Counter(
            "api_errors",
            "Total 4xx/5xx responses labelled by endpoint",
            ["endpoint"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "api_request_duration_seconds",
            "Time to answer an HTTP request, labelled by method and endpoint",
            ["method", "endpoint"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(JobStoreCollector(store, worker, settings))

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _endpoint_template(app: FastAPI, scope: Scope) -> str:
    """The route's path template (``/status/{job_id}``): bounded label cardinality."""
    for route in app.router.routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return getattr(route, "path", "unmatched")
    return "unmatched"


class RequestMetrics:
    """Counts and times every HTTP request. A plain ASGI middleware: Starlette's
    ``BaseHTTPMiddleware`` runs each request through an extra task and memory stream."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics, api: FastAPI) -> None:
        self.app = app
        self.metrics = metrics
        self.api = api  # whose routes name the endpoint label

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            endpoint = _endpoint_template(self.api, scope)
            method = scope["method"]
            self.metrics.requests.labels(method, endpoint, str(status)).inc()
            self.metrics.latency.labels(method, endpoint).observe(time.perf_counter() - start)
            if status >= 400:
                self.metrics.errors.labels(endpoint).inc()


def install_metrics_middleware(app: FastAPI, metrics: ApiMetrics) -> None:
    app.add_middleware(RequestMetrics, metrics=metrics, api=app)
