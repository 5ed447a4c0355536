"""The benchmark pipeline's stages on generated benchmarks: parameters, validation, the
scene-membership model and the selection among the current candidates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.eval.candidates import candidate_config, load_params
from pipeline.eval.evaluate import select
from pipeline.eval.membership_fit import fit
from pipeline.eval.sweep import validate
from pipeline.eval.synthetic import make_collection
from pipeline.membership import FEATURES, member_edges, probabilities
from pipeline.presets import load_preset


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bench")
    make_collection(root, n_views=4, n_scenes=1, n_outliers=1, seed=2, width=160, height=120)
    return root


def _params(folder: Path, **data) -> Path:
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_params_resolve_benchmarks_relative_to_their_file(bench, tmp_path) -> None:
    path = _params(
        tmp_path,
        benchmarks={"one": str(bench), "two": str(bench)},
        datasets={"two": []},
        candidates={"sift": {"preset": "sift"}},
        select={"margin": 1.5},
    )
    params = load_params(path)
    assert [(b.name, b.datasets) for b in params.benchmarks] == [("one", ("synthetic",))]
    assert params.margin == 1.5 and params.membership_base == "sift"


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"benchmarks": {"one": "nowhere"}, "candidates": {"a": {"preset": "sift"}}}, "no train_"),
        ({"benchmarks": {}, "candidates": {"a": {"preset": "sift"}}}, "no benchmark"),
        ({"benchmarks": {"one": "BENCH"}, "candidates": {}}, "no candidates"),
    ],
)
def test_unusable_params_are_clear_errors(bench, tmp_path, data, needle) -> None:
    data = json.loads(json.dumps(data).replace("BENCH", str(bench)))
    with pytest.raises((ValueError, FileNotFoundError), match=needle):
        load_params(_params(tmp_path, **data))


def test_a_candidate_is_a_preset_with_overrides_or_a_whole_config(tmp_path) -> None:
    spec = {"preset": "fast", "set": {"mapping": {"min_model_size": 4}}}
    config = candidate_config("quick", spec, tmp_path)
    assert config == load_preset("fast", {"mapping": {"min_model_size": 4}})
    (tmp_path / "champion.json").write_text(json.dumps(config.to_dict()))
    assert candidate_config("champion", {"config": "champion.json"}, tmp_path) == config
    with pytest.raises(ValueError, match="needs a preset"):
        candidate_config("odd", {"set": {}}, tmp_path)


def test_validate_lists_every_problem_of_a_broken_benchmark(bench, tmp_path) -> None:
    params = load_params(
        _params(tmp_path, benchmarks={"one": str(bench)}, candidates={"a": {"preset": "sift"}})
    )
    assert validate(params) == {"images": {"one": {"synthetic": 5}}}
    broken = tmp_path / "broken"
    make_collection(broken, n_views=4, n_scenes=1, seed=2, width=160, height=120)
    next((broken / "train" / "synthetic").glob("*.png")).write_bytes(b"not a png")
    (broken / "train_thresholds.csv").write_text("dataset,scene,thresholds\n")
    params = load_params(
        _params(tmp_path, benchmarks={"one": str(broken)}, candidates={"a": {"preset": "sift"}})
    )
    with pytest.raises(ValueError, match="not usable") as caught:
        validate(params)
    assert "cannot identify image file" in str(caught.value)
    assert "no thresholds for synthetic/scene0" in str(caught.value)


def test_the_membership_model_learns_to_reject_lone_weak_pairs() -> None:
    rng = np.random.default_rng(0)
    same = np.column_stack([rng.normal(5, 0.5, 200), rng.uniform(0.5, 1, 200),
                            rng.uniform(0.4, 0.9, 200), rng.normal(1.5, 0.3, 200)])  # fmt: skip
    other = np.column_stack([rng.normal(3, 0.5, 40), rng.uniform(0.1, 0.5, 40),
                             rng.uniform(0.0, 0.4, 40), np.zeros(40)])  # fmt: skip
    features = np.vstack([same, other])
    labels = np.array([True] * 200 + [False] * 40)
    model = fit(features, labels, threshold=0.5)
    assert model["features"] == list(FEATURES) and len(model["weights"]) == len(FEATURES) + 1
    assert model["train_auc"] > 0.95 and model["train_balanced_accuracy"] > 0.9
    edges = [(f"a{i}", f"b{i}", 50) for i in range(len(labels))]
    kept = member_edges(edges, features, model["weights"], 0.5)
    assert len(kept) >= 190 and sum(int(a[1:]) >= 200 for a, _, _ in kept) <= 4


def test_pairs_of_one_kind_teach_nothing_and_keep_the_fixed_rule() -> None:
    model = fit(np.ones((5, len(FEATURES))), np.ones(5, dtype=bool), threshold=0.5)
    assert model["weights"] == [] and "one kind" in model["reason"]


def test_a_model_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(ValueError, match="has 5 weights"):
        probabilities(np.zeros((1, len(FEATURES))), [1.0, 2.0])


def _metrics(folder: Path, name: str, **scores: float) -> None:
    values = {
        variant: {
            "score": score,
            "wall_s": 1.0,
            "peak_rss_mb": 10.0,
            "benchmarks": {"one": {"score": score}},
        }
        for variant, score in scores.items()
    }
    (folder / name).mkdir(parents=True)
    (folder / name / "metrics.json").write_text(json.dumps(values))


def test_select_reads_only_the_current_candidates_and_ties_go_to_the_fixed_rule(
    bench, tmp_path
) -> None:
    evaluated = tmp_path / "evaluate"
    _metrics(evaluated, "a", fixed=70.0, learned=70.0)
    _metrics(evaluated, "b", fixed=60.0)
    _metrics(evaluated, "removed", fixed=99.0)  # a candidate no longer listed
    params = load_params(
        _params(
            tmp_path,
            benchmarks={"one": str(bench)},
            candidates={"a": {"preset": "sift"}, "b": {"preset": "fast"}},
        )
    )
    selected = select(params, evaluated)
    assert (selected["best"]["candidate"], selected["best"]["membership"]) == ("a", "fixed")
    assert {row["candidate"] for row in selected["table"]} == {"a", "b"}
    assert selected["best"]["score_one"] == 70.0
