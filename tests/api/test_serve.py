"""api.serve: where the model worker replicas go (a GPU each on a cluster whose head has none)."""

from __future__ import annotations

from api.serve import worker_options
from scene3d.settings import Settings


def test_replicas_reserve_the_gpus_the_settings_ask_for(tmp_path) -> None:
    compose = worker_options(Settings(home=tmp_path, worker_gpus=1, worker_max_replicas=4))
    assert compose["ray_actor_options"] == {"num_gpus": 1}
    assert compose["autoscaling_config"]["min_replicas"] == 1
    assert compose["autoscaling_config"]["max_replicas"] == 4


def test_one_replica_by_default_with_a_gpu_only_where_there_is_one(tmp_path, monkeypatch) -> None:
    import api.serve

    monkeypatch.setattr(api.serve, "_gpu_count", lambda: 0)
    laptop = worker_options(Settings(home=tmp_path))
    assert laptop == {"ray_actor_options": {"num_gpus": 0}}
    monkeypatch.setattr(api.serve, "_gpu_count", lambda: 2)
    assert worker_options(Settings(home=tmp_path))["ray_actor_options"] == {"num_gpus": 1}
