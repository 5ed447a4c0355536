"""Every endpoint of api_reference.rst with every documented status code, through the
real app factory, checked field by field."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import pytest

from pipeline.presets import load_preset
from scene3d.jobs.paths import job_folder
from scene3d.names import MODEL_NAME
from scene3d.served import ServedModel
from tests.api.conftest import PASSWORD, Api, image_zip

JOB_FIELDS = {
    "job_id",
    "stage",
    "status",
    "progress",
    "message",
    "created_at",
    "started_at",
    "finished_at",
    "n_images",
    "n_points",
    "registration_rate",
    "error",
    "download_url",
    "has_drift",
    "drift_severity",
    # beyond the reference: the model the job runs with
    "model_name",
    "model_version",
}
METRICS = (
    "api_requests_total",
    "api_errors_total",
    "inference_latency_seconds",
    "registered_images_ratio",
    "active_jobs_total",
    "model_server_ready",
    "data_valid_images_total",
)


# ------------------------------------------------------------------ probes
def test_health(api: Api) -> None:
    response = api.client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"status", "version", "timestamp"}
    assert body["status"] == "ok" and body["version"] == "2.0.0"
    assert isinstance(body["timestamp"], float)


def test_ready_reports_device_or_503(api: Api) -> None:
    response = api.client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "device": "cpu (2 cores)",
        "model": "preset:sift",
        "model_version": None,
        "note": None,
    }
    api.worker.ready = False
    response = api.client.get("/ready")
    assert response.status_code == 503
    assert response.json() == {"detail": "model worker is still loading the model"}


def test_an_upload_while_no_model_is_served_is_refused_and_leaves_nothing(api: Api) -> None:
    api.worker.ready = False
    response = api.upload(image_zip())
    assert response.status_code == 503
    assert response.json() == {"detail": "model worker is still loading the model"}
    assert api.store.list_jobs() == [] and api.orchestrator.triggered == []


def test_metrics_exposes_every_documented_metric(api: Api) -> None:
    api.client.get("/health")
    api.client.get("/status/does-not-exist")
    response = api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for name in METRICS:
        assert f"# TYPE {name.removesuffix('_total')}" in text or f"# TYPE {name}" in text, name
    assert 'api_requests_total{endpoint="/health",method="GET",status="200"} 1.0' in text
    assert 'api_errors_total{endpoint="/status/{job_id}"} 1.0' in text
    assert "model_server_ready 1.0" in text


def test_metrics_export_the_scheduled_drift_verdict(api: Api) -> None:
    """From drift_detection_dag's state file: none yet, a verdict, an unreadable file."""
    latest = api.settings.drift_dir / "latest.json"

    def gauges() -> dict[str, float]:
        lines = api.client.get("/metrics").text.splitlines()
        return {
            ln.split()[0]: float(ln.split()[1]) for ln in lines if ln.startswith("drift_window_")
        }

    assert gauges()["drift_window_severity_level"] == -1.0
    latest.parent.mkdir(parents=True, exist_ok=True)
    latest.write_text(json.dumps({"severity": "high", "share_drifted": 0.5, "checked_at": 7.0}))
    assert gauges() == {
        "drift_window_severity_level": 2.0,
        "drift_window_share_drifted": 0.5,
        "drift_window_checked_timestamp_seconds": 7.0,
    }
    latest.write_text("{half a file")
    assert gauges()["drift_window_severity_level"] == -1.0


def test_insights_of_a_job_checked_by_the_former_ks_check(api: Api) -> None:
    job_id = api.upload(image_zip()).json()["job_id"]
    old = {"drift_detected": False, "severity": "low", "method": "ks", "checks": {}}
    api.store.set_drift(job_id, False, "low", {**old, "reason": "no reference profile"})
    body = api.client.get(f"/jobs/{job_id}/insights", headers=api.auth()).json()
    assert body["drift_report"]["severity"] == "unknown"  # it never judged anything
    checked = {**old, "checks": {"brightness": {"p_value": 0.01, "drifted": True}}}
    api.store.set_drift(job_id, True, "high", {**checked, "severity": "high"})
    body = api.client.get(f"/jobs/{job_id}/insights", headers=api.auth()).json()
    assert body["drift_report"]["checks"]["brightness"]["drift_detected"] is True


# ------------------------------------------------------------------ auth
def test_token_issued_as_documented(api: Api) -> None:
    response = api.client.post("/auth/token", json={"username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 900
    assert body["access_token"].count(".") == 2


@pytest.mark.parametrize("username", ["alice", "nobody"])
def test_wrong_credentials_401(api: Api, username: str) -> None:
    response = api.client.post("/auth/token", json={"username": username, "password": "wrong"})
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid credentials"}


def test_malformed_login_body_400(api: Api) -> None:
    response = api.client.post("/auth/token", json={"username": "alice"})
    assert response.status_code == 400
    assert set(response.json()) == {"detail"} and "password" in response.json()["detail"]


def test_first_admin_comes_from_the_environment(api: Api) -> None:
    assert api.token("admin", "admin-" + PASSWORD)


# ------------------------------------------------------------------ upload and status
def test_upload_202_queues_a_job_and_triggers_it(api: Api) -> None:
    response = api.upload(image_zip(), dataset_name="my_data", scene_name="hall-1")
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"job_id", "message"} and body["message"] == "Pipeline started."
    assert api.orchestrator.triggered == [body["job_id"]]
    job = api.store.get_job(body["job_id"])
    assert job.stage == "queued" and job.dataset_name == "my_data" and job.scene_name == "hall-1"
    assert (api.settings.job_dir(job.id) / "upload.zip").is_file()


def test_a_job_is_pinned_to_the_model_served_when_it_was_uploaded(api: Api) -> None:
    """The job records the model and keeps its whole configuration in its folder, so a
    model served later (here a changed one) does not change what its tasks run."""
    served = ServedModel(MODEL_NAME, "7", load_preset("fast"))
    api.worker.model = served
    job_id = api.upload(image_zip()).json()["job_id"]
    api.worker.model = ServedModel(MODEL_NAME, "8", load_preset("sift"))
    job = api.store.get_job(job_id)
    assert (job.model_name, job.model_version, job.preset) == (MODEL_NAME, "7", "fast")
    assert ServedModel.read(job_folder(api.settings, job_id).model) == served
    status = api.client.get(f"/status/{job_id}", headers=api.auth()).json()
    insights = api.client.get(f"/jobs/{job_id}/insights", headers=api.auth()).json()
    for body in (status, insights):
        assert (body["model_name"], body["model_version"]) == (MODEL_NAME, "7")


def test_upload_defaults_names(api: Api) -> None:
    job_id = api.upload(image_zip()).json()["job_id"]
    job = api.store.get_job(job_id)
    assert (job.dataset_name, job.scene_name) == ("custom", "scene_01")


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        (b"definitely not a zip", "not a valid ZIP"),
        (b"", "not a valid ZIP"),
    ],
)
def test_upload_invalid_file_400(api: Api, payload: bytes, needle: str) -> None:
    response = api.upload(payload)
    assert response.status_code == 400
    assert needle.lower() in response.json()["detail"].lower()
    assert api.store.list_jobs() == [] and api.orchestrator.triggered == []


@pytest.mark.parametrize("name", ["../etc", "a b", "x" * 65, "-lead", "a/b"])
def test_upload_bad_names_400(api: Api, name: str) -> None:
    response = api.upload(image_zip(), dataset_name=name)
    assert response.status_code == 400
    assert "dataset_name" in response.json()["detail"]
    assert api.store.list_jobs() == []


def test_upload_without_file_400(api: Api) -> None:
    response = api.client.post("/upload", headers=api.auth(), data={"dataset_name": "x"})
    assert response.status_code == 400


def test_upload_413_over_the_limit(api: Api) -> None:
    big = b"\0" * (api.settings.max_upload_bytes + 1)
    response = api.upload(big)
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    assert not any((api.settings.jobs_dir / ".incoming").glob("*")), "partial file left behind"


def test_upload_502_when_orchestrator_is_down_and_job_failed(api: Api) -> None:
    api.orchestrator.down = True
    response = api.upload(image_zip())
    assert response.status_code == 502
    assert response.json()["detail"] == "the orchestrator is unreachable; try again later"
    (job,) = api.store.list_jobs()
    assert job.stage == "failed" and "orchestrator is unreachable" in job.error
    assert "connection refused" not in job.error  # Airflow's own words stay in the log


def test_status_and_jobs_are_identical(api: Api) -> None:
    job_id = api.upload(image_zip()).json()["job_id"]
    headers = api.auth()
    a = api.client.get(f"/status/{job_id}", headers=headers)
    b = api.client.get(f"/jobs/{job_id}", headers=headers)
    assert a.status_code == b.status_code == 200
    assert a.json() == b.json()
    body = a.json()
    assert set(body) == JOB_FIELDS
    assert body["stage"] == body["status"] == "queued" and body["progress"] == 0
    assert body["download_url"] is None and body["has_drift"] is False
    assert body["drift_severity"] == "low" and body["finished_at"] is None


def test_status_404(api: Api) -> None:
    response = api.client.get("/status/3f7a91b2-1234-5678-abcd-ef0123456789", headers=api.auth())
    assert response.status_code == 404
    assert response.json() == {"detail": "Job not found"}


def test_status_moves_with_the_store(api: Api) -> None:
    job_id = api.upload(image_zip()).json()["job_id"]
    api.store.update_progress(job_id, "matching", 42, "matching 10/20 pairs", n_images=3)
    body = api.client.get(f"/status/{job_id}", headers=api.auth()).json()
    assert (body["stage"], body["progress"], body["n_images"]) == ("matching", 42, 3)
    assert body["started_at"] is not None


# ------------------------------------------------------------------ downloads before success
@pytest.mark.parametrize("suffix", ["", "/csv", "/cluster0_decimated_model0_abcdef12.ply"])
def test_downloads_409_before_success(api: Api, suffix: str) -> None:
    job_id = api.upload(image_zip()).json()["job_id"]
    response = api.client.get(f"/download/jobs/{job_id}{suffix}", headers=api.auth())
    assert response.status_code == 409
    assert "not complete" in response.json()["detail"]


def test_download_404_when_no_points(api: Api) -> None:
    job_id = api.upload(image_zip()).json()["job_id"]
    api.store.update_progress(job_id, "success", 100, "done", n_points=0)
    response = api.client.get(f"/download/jobs/{job_id}", headers=api.auth())
    assert response.status_code == 404
    assert "no points" in response.json()["detail"]


# ------------------------------------------------------------------ clusters and insights
def test_clusters_shape(api: Api) -> None:
    job_id = api.upload(image_zip()).json()["job_id"]
    api.store.replace_clusters(
        job_id,
        [
            {
                "id": 0,
                "name": "cluster0_model0",
                "num_points3D": 124532,
                "num_images": 12,
                "filename": "cluster0_decimated_model0_3f7a91b2.ply",
            }
        ],
    )
    response = api.client.get(f"/clusters/{job_id}", headers=api.auth())
    assert response.status_code == 200
    assert response.json() == {
        "clusters": [
            {
                "id": 0,
                "name": "cluster0_model0",
                "num_points3D": 124532,
                "filename": "cluster0_decimated_model0_3f7a91b2.ply",
            }
        ]
    }
    assert api.client.get("/clusters/nope", headers=api.auth()).status_code == 404


@pytest.mark.parametrize(
    ("severity", "text"),
    [
        ("low", "No action needed."),
        ("medium", "review"),
        ("high", "retrain"),
        ("unknown", "no reference profile"),
    ],
)
def test_insights_recommendation_per_severity(api: Api, severity: str, text: str) -> None:
    job_id = api.upload(image_zip()).json()["job_id"]
    drifted = severity in ("medium", "high")
    check = {"method": "ks p-value", "score": 0.001, "threshold": 0.005, "drift_detected": True}
    report = {"drift_detected": drifted, "severity": severity, "checks": {"brightness": check}}
    api.store.set_drift(job_id, drifted, severity, report)
    api.store.update_progress(job_id, "success", 100, "done", n_points=10, registration_rate=0.9333)
    response = api.client.get(f"/jobs/{job_id}/insights", headers=api.auth())
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "registration_rate",
        "n_points",
        "has_drift",
        "drift_severity",
        "drift_report",
        "recommendation",
        "model_name",
        "model_version",
    }
    assert body["registration_rate"] == 0.9333 and body["n_points"] == 10
    assert body["drift_severity"] == severity and body["has_drift"] is drifted
    assert {"drift_detected", "severity", "checks"} <= set(body["drift_report"])
    assert body["drift_report"]["checks"]["brightness"] == check
    assert text.lower() in body["recommendation"].lower()
    assert api.client.get("/jobs/nope/insights", headers=api.auth()).status_code == 404


# ------------------------------------------------------------------ drift
def test_drift_check_on_a_zip(api: Api) -> None:
    response = api.client.post(
        "/drift", headers=api.auth(), files={"file": ("p.zip", image_zip(4), "application/zip")}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["drift_detected"] is False and body["severity"] == "unknown"
    assert body["reason"] == "no reference profile"
    assert api.store.list_jobs() == []


def test_insights_before_the_drift_check_say_so(api: Api) -> None:
    job_id = api.upload(image_zip()).json()["job_id"]
    body = api.client.get(f"/jobs/{job_id}/insights", headers=api.auth()).json()
    assert body["drift_report"]["reason"] == "the drift check has not run yet"
    assert "not run yet" in body["recommendation"]


def test_drift_report_html_is_the_owners_download(api: Api) -> None:
    from drift.profile import ReferenceProfile
    from scene3d.jobs.drift_check import check_images
    from scene3d.jobs.paths import job_folder

    job_id = api.upload(image_zip(6)).json()["job_id"]
    url = f"/jobs/{job_id}/drift-report"
    missing = api.client.get(url, headers=api.auth())
    assert missing.status_code == 404 and "has not run" in missing.json()["detail"]
    photos = api.settings.home / "photos"
    with zipfile.ZipFile(io.BytesIO(image_zip(6))) as zf:
        zf.extractall(photos)
    images = sorted(p for p in photos.rglob("*.png"))
    reference = ReferenceProfile.from_images(images, "same")
    check_images(api.settings, images, reference, job_folder(api.settings, job_id).drift)
    response = api.client.get(url, headers=api.auth())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "attachment" in response.headers["content-disposition"]
    assert b"Value Drift for column brightness" in response.content
    assert api.client.get(url, headers=api.auth("bob")).status_code == 404


def test_drift_check_refuses_bad_zip(api: Api) -> None:
    response = api.client.post(
        "/drift", headers=api.auth(), files={"file": ("p.zip", b"nope", "application/zip")}
    )
    assert response.status_code == 400


def test_trigger_retrain_is_for_admins(api: Api) -> None:
    admin = {"Authorization": f"Bearer {api.token('admin', 'admin-' + PASSWORD)}"}
    response = api.client.post("/drift/trigger-retrain", headers=admin)
    assert response.status_code == 200
    assert response.json() == {"status": "triggered", "run_id": "manual__1"}
    response = api.client.post("/drift/trigger-retrain", headers=api.auth("alice"))
    assert response.status_code == 403
    assert response.json() == {"detail": "Admin role required"}
    assert api.orchestrator.retrains == 1  # the refused call started nothing
    api.orchestrator.down = True
    response = api.client.post("/drift/trigger-retrain", headers=admin)
    assert response.status_code == 502
    assert response.json() == {"detail": "the orchestrator is unreachable; try again later"}


# ------------------------------------------------------------------ auth required
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/upload"),
        ("get", "/status/x"),
        ("get", "/jobs/x"),
        ("get", "/download/jobs/x"),
        ("get", "/download/jobs/x/csv"),
        ("get", "/download/jobs/x/a.ply"),
        ("get", "/clusters/x"),
        ("get", "/jobs/x/insights"),
        ("post", "/drift"),
        ("post", "/drift/trigger-retrain"),
    ],
)
def test_every_protected_endpoint_needs_a_token(api: Api, method: str, path: str) -> None:
    response = getattr(api.client, method)(path)
    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}
    assert response.headers["www-authenticate"] == "Bearer"


def test_openapi_has_a_response_model_everywhere(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            ok = op["responses"].get("200") or op["responses"].get("202")
            assert ok, (method, path)
            if path.endswith("/drift-report"):  # a file: Evidently's page
                assert "text/html" in ok["content"], (method, path)
            elif path != "/metrics" and not path.startswith("/download"):
                assert "schema" in ok["content"]["application/json"], (method, path)


# ------------------------------------------------------------------ a real job
@pytest.mark.slow
def test_real_job_end_to_end_with_the_local_orchestrator(tmp_path) -> None:
    """Upload a generated two-view-rich scene; the local orchestrator runs the engine;
    status rises to success; PLY ZIP, CSV, single PLY and clusters download."""
    from fastapi.testclient import TestClient

    from api.main import create_app
    from pipeline.eval.synthetic import make_collection
    from scene3d import runtime
    from scene3d.security import hash_password
    from tests.api.conftest import make_settings

    image_dir, _, _ = make_collection(tmp_path / "sample", n_views=6, n_scenes=1, seed=2)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(image_dir.iterdir()):
            zf.write(path, f"scan/{path.name}")
    settings = make_settings(tmp_path / "home")
    settings.home.mkdir()
    runtime.prepare(settings)
    app = create_app(settings)
    ctx = app.state.ctx
    ctx.store.create_user("carol", hash_password(PASSWORD))
    with TestClient(app) as client:
        token = client.post("/auth/token", json={"username": "carol", "password": PASSWORD})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        response = client.post(
            "/upload", headers=headers, files={"file": ("s.zip", buf.getvalue(), "application/zip")}
        )
        assert response.status_code == 202
        job_id = response.json()["job_id"]
        ctx.orchestrator.join(timeout=300)
        status = client.get(f"/status/{job_id}", headers=headers).json()
        assert status["stage"] == "success", status
        assert status["progress"] == 100 and status["n_images"] == 6
        assert status["registration_rate"] == 1.0 and status["n_points"] > 100
        assert status["download_url"] == f"/download/jobs/{job_id}"
        plys = client.get(f"/download/jobs/{job_id}", headers=headers)
        assert plys.status_code == 200 and plys.headers["content-type"] == "application/zip"
        names = zipfile.ZipFile(io.BytesIO(plys.content)).namelist()
        assert f"cluster0_decimated_model0_{job_id[:8]}.ply" in names
        rows = list(
            csv.DictReader(
                io.StringIO(client.get(f"/download/jobs/{job_id}/csv", headers=headers).text)
            )
        )
        assert len(rows) == 6 and all(r["scene"] == "cluster0_model0" for r in rows)
        clusters = client.get(f"/clusters/{job_id}", headers=headers).json()["clusters"]
        one = client.get(f"/download/jobs/{job_id}/{clusters[0]['filename']}", headers=headers)
        assert one.status_code == 200 and one.content.startswith(b"ply\n")
        metrics = client.get("/metrics").text
        assert "registered_images_ratio 1.0" in metrics
        assert "data_valid_images_total 6.0" in metrics
        assert "inference_latency_seconds_count 1.0" in metrics


def test_drift_against_a_reference_flags_very_different_photos(api: Api) -> None:
    import numpy as np
    from PIL import Image

    from drift.profile import ReferenceProfile

    rng = np.random.default_rng(1)
    ref_dir = api.settings.home / "ref"
    ref_dir.mkdir()
    for i in range(12):
        pixels = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(ref_dir / f"r{i}.png")
    target = api.settings.drift_reference
    target.parent.mkdir(parents=True)
    ReferenceProfile.from_images(sorted(ref_dir.iterdir()), "noise").save(target)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(8):
            dark = np.full((300, 200, 3), 5 + i, dtype=np.uint8)
            img = io.BytesIO()
            Image.fromarray(dark).save(img, "PNG")
            zf.writestr(f"d{i}.png", img.getvalue())
    response = api.client.post(
        "/drift", headers=api.auth(), files={"file": ("d.zip", buf.getvalue(), "application/zip")}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["drift_detected"] is True and body["severity"] == "high"
    assert body["checks"]["brightness"]["drift_detected"] is True
    assert body["reference"] == "noise (12 images)"
