"""Per-user quotas: jobs queued or running at once and uploads (and drift checks) per
minute answer 429 with Retry-After; other users and administrators keep their own."""

from __future__ import annotations

from dataclasses import replace

from fastapi.testclient import TestClient

from api.main import create_app
from api.routes import drift as drift_routes
from scene3d.security import hash_password
from tests.api.conftest import PASSWORD, Api, FakeOrchestrator, FakeWorker, image_zip


def _client(api: Api, **quotas) -> TestClient:
    settings = replace(api.settings, **quotas)
    app = create_app(
        settings, store=api.store, orchestrator=FakeOrchestrator(), worker=FakeWorker()
    )
    return TestClient(app)


def _upload(client: TestClient, token: str):
    return client.post(
        "/upload",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": ("p.zip", image_zip(3), "application/zip")},
    )


def test_unfinished_jobs_per_user_are_capped(api: Api) -> None:
    alice, bob = api.token("alice"), api.token("bob")
    with _client(api, user_max_unfinished_jobs=2, user_uploads_per_minute=0) as client:
        assert [_upload(client, alice).status_code for _ in range(2)] == [202, 202]
        refused = _upload(client, alice)
        assert refused.status_code == 429 and refused.headers["retry-after"]
        assert "2 jobs queued or running" in refused.json()["detail"]
        assert _upload(client, bob).status_code == 202  # bob's quota is his own
        first = api.store.list_jobs(owner_id=api.store.get_user("alice").id)[-1]
        api.store.mark_failed(first.id, "done with it")
        assert _upload(client, alice).status_code == 202  # a finished job frees a place
    assert len(api.store.list_jobs()) == 4


def test_uploads_per_minute_are_capped_and_admins_have_their_own_limit(api: Api) -> None:
    api.store.create_user("root", hash_password(PASSWORD), role="admin")
    alice, root = api.token("alice"), api.token("root")
    with _client(api, user_max_unfinished_jobs=0, user_uploads_per_minute=3) as client:
        codes = [_upload(client, alice).status_code for _ in range(4)]
        assert codes == [202, 202, 202, 429]
        assert [_upload(client, root).status_code for _ in range(4)] == [202] * 4


def test_drift_checks_per_minute_are_capped(api: Api, monkeypatch) -> None:
    monkeypatch.setattr(
        drift_routes, "drift_for_zip",
        lambda *a: {"drift_detected": False, "severity": "low", "checks": {}, "n_images": 3},
    )  # fmt: skip
    with _client(api, user_uploads_per_minute=2) as client:
        token = api.token("alice")

        def check():
            return client.post(
                "/drift", headers={"Authorization": f"Bearer {token}"},
                files={"file": ("p.zip", image_zip(3), "application/zip")},
            )  # fmt: skip

        assert [check().status_code for _ in range(3)] == [200, 200, 429]


def test_parallel_uploads_cannot_pass_the_quota_together(api: Api, monkeypatch) -> None:
    """The early check passes for all of them; the store's check at creation does not."""
    from api.routes import jobs as job_routes

    monkeypatch.setattr(job_routes, "check_upload_quota", lambda *a: None)  # all "in flight"
    alice = api.token("alice")
    with _client(api, user_max_unfinished_jobs=2, user_uploads_per_minute=0) as client:
        codes = [_upload(client, alice).status_code for _ in range(4)]
    assert codes == [202, 202, 429, 429]
    assert len(api.store.list_jobs()) == 2
    assert sorted(p.name for p in api.settings.jobs_dir.iterdir()) == sorted(
        [".incoming", *(j.id for j in api.store.list_jobs())]
    )
