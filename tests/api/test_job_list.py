"""GET /jobs: one's own jobs, newest first, a page at a time, by stage; admins see everyone's
(or one owner's); nobody else lists another user's jobs."""

from __future__ import annotations

import uuid

import pytest

from tests.api.conftest import PASSWORD, Api


def _jobs(api: Api, owner: str, n: int, stage: str = "queued") -> list[str]:
    user = api.store.get_user(owner)
    ids = []
    for i in range(n):
        job = api.store.create_job(str(uuid.uuid4()), user.id, "d", f"s{i}")
        if stage != "queued":
            api.store.update_progress(job.id, stage, 100 if stage == "success" else 10, "x")
        ids.append(job.id)
    return ids


def _admin(api: Api) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.token('admin', 'admin-' + PASSWORD)}"}


def test_own_jobs_newest_first_a_page_at_a_time(api: Api) -> None:
    mine = _jobs(api, "alice", 5)
    _jobs(api, "bob", 2)
    body = api.client.get("/jobs", headers=api.auth(), params={"limit": 2}).json()
    assert body["total"] == 5 and (body["limit"], body["offset"]) == (2, 0)
    assert [j["job_id"] for j in body["jobs"]] == mine[::-1][:2]
    assert all(j["owner"] == "alice" for j in body["jobs"])
    rest = api.client.get("/jobs", headers=api.auth(), params={"limit": 2, "offset": 4})
    assert [j["job_id"] for j in rest.json()["jobs"]] == [mine[0]]
    job = body["jobs"][0]
    assert {"stage", "progress", "drift_severity", "model_version"} <= set(job)


def test_filter_by_stage(api: Api) -> None:
    _jobs(api, "alice", 2)
    done = _jobs(api, "alice", 1, stage="success")
    body = api.client.get("/jobs", headers=api.auth(), params={"stage": "success"}).json()
    assert [j["job_id"] for j in body["jobs"]] == done and body["total"] == 1
    assert body["jobs"][0]["download_url"] == f"/download/jobs/{done[0]}"
    wrong = api.client.get("/jobs", headers=api.auth(), params={"stage": "sleeping"})
    assert wrong.status_code == 400 and "stage" in wrong.json()["detail"]


def test_other_users_jobs_are_not_listed(api: Api) -> None:
    _jobs(api, "alice", 2)
    assert api.client.get("/jobs", headers=api.auth("bob")).json()["jobs"] == []
    refused = api.client.get("/jobs", headers=api.auth("bob"), params={"owner": "alice"})
    assert refused.status_code == 403
    own = api.client.get("/jobs", headers=api.auth("bob"), params={"owner": "bob"})
    assert own.status_code == 200


def test_admins_see_everyones_or_one_owners(api: Api) -> None:
    alice, bob = _jobs(api, "alice", 2), _jobs(api, "bob", 1)
    everyone = api.client.get("/jobs", headers=_admin(api)).json()
    assert everyone["total"] == 3
    assert {j["job_id"]: j["owner"] for j in everyone["jobs"]} == {
        **dict.fromkeys(alice, "alice"),
        **dict.fromkeys(bob, "bob"),
    }
    bobs = api.client.get("/jobs", headers=_admin(api), params={"owner": "bob"}).json()
    assert [j["job_id"] for j in bobs["jobs"]] == bob
    nobody = api.client.get("/jobs", headers=_admin(api), params={"owner": "carol"}).json()
    assert nobody == {"jobs": [], "total": 0, "limit": 20, "offset": 0}


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"offset": -1}])
def test_bad_paging_is_refused(api: Api, params: dict) -> None:
    response = api.client.get("/jobs", headers=api.auth(), params=params)
    assert response.status_code == 400 and next(iter(params)) in response.json()["detail"]


def test_listing_needs_a_login(api: Api) -> None:
    assert api.client.get("/jobs").status_code == 401
