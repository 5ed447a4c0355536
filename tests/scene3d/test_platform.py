"""scene3d.platform: what each service of the embedded platform is started with."""

from __future__ import annotations

from dataclasses import replace

import pytest

from scene3d.airflow import airflow_env
from scene3d.platform import (
    airflow_services,
    mlflow_service,
    platform_settings,
    ray_services,
    service_env,
)
from scene3d.settings import Settings


def _settings(tmp_path) -> Settings:
    return platform_settings(
        Settings(home=tmp_path, jwt_secret="j" * 40, api_port=8123, ray_port=6399)
    )


def test_services_learn_where_the_others_are(tmp_path) -> None:
    settings = _settings(tmp_path)
    env = service_env(settings)
    assert env["SCENE3D_AIRFLOW_URL"] == "http://127.0.0.1:8080"
    assert env["SCENE3D_RAY_ADDRESS"] == "127.0.0.1:6399"
    assert env["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5000"
    assert env["SCENE3D_HOME"] == str(tmp_path)
    assert env["RAY_USAGE_STATS_ENABLED"] == "0"


def test_no_service_is_handed_a_secret(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SCENE3D_ADMIN_PASSWORD", "from-the-shell")
    settings = _settings(tmp_path)
    head, serve = ray_services(settings, service_env(settings))
    for service in (head, serve):
        assert "SCENE3D_JWT_SECRET" not in service.env
        assert "SCENE3D_ADMIN_PASSWORD" not in service.env
    assert serve.argv[-2:] == ["-m", "api.serve"]
    assert serve.health_url == "http://127.0.0.1:8123/ready"


def test_a_given_signing_key_is_stored_once_and_a_different_one_refused(tmp_path) -> None:
    from scene3d.platform import _keep_given_signing_key

    settings = _settings(tmp_path)
    _keep_given_signing_key(settings)
    key = tmp_path / "secrets" / "jwt_secret"
    assert key.read_text().strip() == "j" * 40
    _keep_given_signing_key(settings)  # the same key again: fine
    with pytest.raises(RuntimeError, match="differs from the key in secrets/jwt_secret"):
        _keep_given_signing_key(replace(settings, jwt_secret="k" * 40))


def test_airflow_keys_reach_only_the_airflow_processes(tmp_path) -> None:
    settings = _settings(tmp_path)
    env = service_env(settings)
    airflow = airflow_env(settings, base_env=env)
    assert "AIRFLOW__CORE__FERNET_KEY" in airflow
    for service in (mlflow_service(settings, env), *ray_services(settings, env)):
        assert not any(name.startswith("AIRFLOW__") for name in service.env), service.name
    for service in airflow_services(settings, airflow):
        assert service.env["AIRFLOW__CORE__FERNET_KEY"] == airflow["AIRFLOW__CORE__FERNET_KEY"]


def test_mlflow_gets_its_backend_store_by_environment_not_argv(tmp_path) -> None:
    from scene3d.platform import mlflow_service

    url = "postgresql+psycopg://mlflow:pw@127.0.0.1/mlflow"
    settings = replace(_settings(tmp_path), mlflow_backend_uri=url)
    service = mlflow_service(settings, service_env(settings))
    assert service.env["MLFLOW_BACKEND_STORE_URI"] == url
    assert not any("pw@" in arg for arg in service.argv)
    assert "SCENE3D_MLFLOW_BACKEND_URI" not in service_env(settings)  # a secret: named only here
    embedded = mlflow_service(_settings(tmp_path), service_env(_settings(tmp_path)))
    assert embedded.env["MLFLOW_BACKEND_STORE_URI"].startswith("sqlite:///")


def test_ray_serve_believes_forwarded_for_only_from_configured_proxies(tmp_path) -> None:
    assert service_env(_settings(tmp_path))["FORWARDED_ALLOW_IPS"] == ""
    proxied = replace(_settings(tmp_path), trusted_proxies="10.0.0.5")
    assert service_env(proxied)["FORWARDED_ALLOW_IPS"] == "10.0.0.5"
