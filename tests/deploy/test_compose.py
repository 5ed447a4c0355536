"""docker-compose.yml against the Compose specification and the deployment's rules: only
the API published, every service healthy before its dependants start, every secret from
the generator, no password in the file (no Docker engine runs here)."""

from __future__ import annotations

import json
import re
from importlib.resources import files

import jsonschema
import pytest

from scene3d.deploy import SECRETS
from tests.conftest import REPO_ROOT
from tests.deploy.conftest import load_compose

API_PORT = "8000"
# Settings whose value is a secret (or holds one: URLs with a password).
SECRET_NAME = re.compile(
    r"PASSWORD|SECRET|TOKEN|_KEY|SQL_ALCHEMY_CONN|DATABASE_URL|BROKER_URL|RESULT_BACKEND"
    r"|BACKEND_STORE_URI"
)


def _compose_schema() -> dict:
    # The Compose specification's schema, as vendored (and kept current) by check-jsonschema.
    vendor = files("check_jsonschema.builtin_schemas.vendor")
    return json.loads(vendor.joinpath("compose-spec.json").read_text())


def test_compose_file_matches_the_compose_specification(compose):
    schema = _compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []


def test_the_schema_check_catches_a_broken_file(compose):
    schema = _compose_schema()
    broken = {**compose, "services": {**compose["services"], "api": {"ports": "8000"}}}
    validator = jsonschema.validators.validator_for(schema)(schema)
    assert list(validator.iter_errors(broken)), "a string where a list belongs must be refused"


def _published(service: dict) -> list[tuple[str, str]]:
    """(host port, container port) of every published port, short or long syntax."""
    result = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            result.append((str(port.get("published", "")), str(port["target"])))
        else:
            parts = str(port).split(":")
            result.append((parts[-2] if len(parts) > 1 else "", parts[-1]))
    return result


def test_only_the_api_is_published(compose):
    published = {name: _published(s) for name, s in compose["services"].items()}
    assert {name for name, ports in published.items() if ports} == {"ray-head"}
    assert [target for _, target in published["ray-head"]] == [API_PORT]
    for name, service in compose["services"].items():
        assert "expose" not in service or name == "ray-head"
        assert service.get("network_mode") != "host", name


def test_every_service_but_the_api_is_on_the_internal_network_only(compose):
    assert compose["networks"]["internal"]["internal"] is True
    for name, service in compose["services"].items():
        expected = ["edge", "internal"] if name == "ray-head" else ["internal"]
        assert sorted(service["networks"]) == expected, name


def test_every_service_has_a_health_check_restart_policy_and_limits(compose):
    for name, service in compose["services"].items():
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} has no health check"
        assert service.get("restart") == "unless-stopped", name
        limits = service.get("deploy", {}).get("resources", {}).get("limits", {})
        assert limits.get("memory") and limits.get("cpus"), f"{name} has no resource limits"


def test_services_start_in_order_of_health(compose):
    services = compose["services"]
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for other, rule in depends.items():
            assert other in services, f"{name} depends on unknown {other}"
            assert rule == {"condition": "service_healthy"}, f"{name} -> {other}"
    # The order that matters: databases, then Airflow's migration, then the API.
    assert "postgres" in services["airflow-apiserver"]["depends_on"]
    assert {"postgres", "mlflow", "airflow-apiserver"} <= set(services["ray-head"]["depends_on"])
    assert "ray-head" in services["ray-gpu-worker"]["depends_on"]


def test_every_piece_of_state_is_on_a_named_volume(compose):
    stateful = {
        "postgres": "/var/lib/postgresql/data",
        "redis": "/data",
        "mlflow": "/mlflow/artifacts",
        "ray-head": "/data",
        "airflow-worker": "/data",
        "prometheus": "/prometheus",
        "grafana": "/var/lib/grafana",
    }
    for name, target in stateful.items():
        mounts = dict(reversed(v.split(":")[:2]) for v in compose["services"][name]["volumes"])
        assert mounts.get(target) in compose["volumes"], f"{name}:{target} is not a volume"


def test_every_secret_comes_from_the_generator(compose):
    generated = {s.name: s.env for s in SECRETS}
    declared = compose["secrets"]
    assert set(declared) == set(generated)
    for name, spec in declared.items():
        assert spec == {"environment": generated[name]}, name
    for service_name, service in compose["services"].items():
        for entry in service.get("secrets", []):
            source = entry["source"] if isinstance(entry, dict) else entry
            assert source in declared, f"{service_name} uses undeclared secret {source}"


def test_every_secret_file_a_service_names_is_mounted_into_it(compose):
    for name, service in compose["services"].items():
        mounted = {e["source"] if isinstance(e, dict) else e for e in service.get("secrets", [])}
        named = [
            (key, path)
            for key, value in service.get("environment", {}).items()
            for path in re.findall(r"/run/secrets/([\w.-]+)", str(value))
        ]
        named += [
            ("command", path)
            for path in re.findall(r"/run/secrets/([\w.-]+)", str(service.get("command", "")))
        ]
        for key, secret in named:
            assert secret in mounted, f"{name}: {key} names {secret}, which is not mounted"


def test_no_environment_value_is_a_literal_secret(compose):
    for name, service in compose["services"].items():
        for key, value in service.get("environment", {}).items():
            value = str(value)
            assert not re.search(r"://[^/\s:@]*:[^/\s@]+@", value), f"{name}: {key} has a password"
            if not SECRET_NAME.search(key) or key.endswith("_USER"):
                continue
            if key.endswith("_CMD"):  # Airflow runs it and takes its output
                assert re.fullmatch(r"cat /run/secrets/[\w.-]+", value), f"{name}: {key}"
            else:
                assert key.endswith("_FILE"), f"{name}: {key} must be a *_FILE or *_CMD"
                assert value.startswith("/"), f"{name}: {key}={value} is not a path"


@pytest.mark.parametrize(
    "image_of", ["postgres", "redis", "prometheus", "grafana", "ray-head", "ray-gpu-worker"]
)
def test_images_are_pinned(compose, image_of):
    image = compose["services"][image_of]["image"]
    name, _, tag = image.rpartition(":")
    assert name and tag and tag != "latest" and re.search(r"\d+\.\d+", tag), image


def test_the_gpu_worker_gets_a_gpu_and_a_hopper_build_of_torch(compose):
    worker = compose["services"]["ray-gpu-worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert worker["build"]["args"]["REQUIRE_CUDA_ARCH"] == "sm_90"
    assert "/cu" in worker["build"]["args"]["TORCH_INDEX"]
    # The model worker replicas must reserve the GPU, or Serve leaves them on the head.
    assert worker["environment"]["SCENE3D_WORKER_GPUS"] == "1"
    assert "ports" not in worker and "container_name" not in worker  # --scale needs both


def test_the_ui_override_publishes_on_loopback_only(compose):
    override = load_compose(REPO_ROOT / "docker-compose.ui.yml")
    schema = _compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    assert list(validator.iter_errors(override)) == []
    for name, service in override["services"].items():
        assert name in compose["services"]
        for port in service["ports"]:
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
