"""The API fuzzed with schemathesis against its own OpenAPI schema (bounded in examples and
time): no 500 on any operation, and every response matches the schema it documents."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api.main import create_app
from scene3d import runtime
from scene3d.security import hash_password
from scene3d.store import JobStore
from tests.api.conftest import PASSWORD, FakeOrchestrator, FakeWorker, make_settings

EXAMPLES = 25
"""Generated cases per operation: the whole run stays under a minute on two cores."""


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    home = tmp_path_factory.mktemp("fuzz-home")
    app_settings = make_settings(home, login_max_failures=10_000, login_max_failures_wide=10_000)
    runtime.prepare(app_settings)
    store = JobStore(app_settings.database_url)
    store.create_user("alice", hash_password(PASSWORD), role="user")
    yield create_app(
        app_settings, store=store, orchestrator=FakeOrchestrator(), worker=FakeWorker()
    )
    store.close()


@pytest.fixture(scope="module")
def auth(app) -> dict[str, str]:
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        token = client.post("/auth/token", json={"username": "alice", "password": PASSWORD}).json()[
            "access_token"
        ]
    return {"Authorization": f"Bearer {token}"}


def test_no_operation_fails_or_breaks_its_schema(app, auth) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    calls: dict[str, int] = {}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def fuzz(case) -> None:
            # Every check but "schema-valid data is accepted": the schema cannot say that a
            # binary `file` must be a ZIP of photos, and refusing one (400) is the point.
            case.call_and_validate(headers=auth, excluded_checks=[positive_data_acceptance])
            calls[case.operation.label] = calls.get(case.operation.label, 0) + 1

        fuzz()
    print(f"fuzzed {len(operations)} operations, {sum(calls.values())} requests: {calls}")
    assert set(calls) == {operation.label for operation in operations}
