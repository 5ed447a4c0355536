"""Prometheus and Grafana of docker-compose.yml: the configuration passes promtool, and every
metric the dashboard draws is one the API really exports."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml
from fastapi.testclient import TestClient

from api.main import create_app
from scene3d import runtime
from scene3d.store import JobStore
from tests.api.conftest import FakeOrchestrator, FakeWorker, make_settings
from tests.conftest import REPO_ROOT
from tests.deploy.grafana import DASHBOARD, dashboard_queries, exported_samples, metric_names

PROMETHEUS_CONFIG = REPO_ROOT / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA = REPO_ROOT / "deploy" / "grafana"


def test_prometheus_configuration_passes_promtool():
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool missing: `make test` installs Debian's prometheus package")
    result = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS_CONFIG)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_prometheus_scrapes_only_the_api(compose):
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    targets = [
        target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    ]
    assert targets == ["ray-head:8000"]
    assert config["scrape_configs"][0]["metrics_path"] == "/metrics"
    assert "ray-head" in compose["services"]


def test_grafana_provisions_the_datasource_the_dashboard_uses():
    datasource = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    (source,) = datasource["datasources"]
    assert source["url"] == "http://prometheus:9090"
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("requests", "error", "latency", "active jobs", "registered", "drift", "model"):
        assert topic in titles, topic


def test_metric_names_are_read_from_queries():
    expr = (
        "histogram_quantile(0.99, sum by (le) "
        '(rate(api_request_duration_seconds_bucket{endpoint="/x"}[5m])))'
    )
    assert metric_names(expr) == {"api_request_duration_seconds_bucket"}
    assert metric_names("rate(a_sum[1h]) / rate(a_count[1h])") == {"a_sum", "a_count"}


def test_every_dashboard_metric_is_exported_by_the_api(tmp_path):
    settings = make_settings(tmp_path / "home")
    settings.home.mkdir()
    runtime.prepare(settings)
    store = JobStore(settings.database_url)
    app = create_app(settings, store=store, orchestrator=FakeOrchestrator(), worker=FakeWorker())
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/no-such-page").status_code == 404  # an error to count
        exported = exported_samples(client.get("/metrics").text)
    store.close()
    queried = set().union(*(metric_names(e) for e in dashboard_queries()))
    assert queried, "the dashboard queries nothing"
    assert queried - exported == set()
