"""Tests of the IMC2025 metric: official golden scores, plus small synthetic scenes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.eval.scoring import (
    DatasetScore,
    ScoreReport,
    score_submission,
)

GOLDEN = [
    "sub_gt.csv",
    "sub_all_nan.csv",
    "sub_colmap_sift.csv",
    "sub_colmap_sift_outliers_first.csv",
    "sub_gt_scenes_merged.csv",
]
HEADER = "dataset,scene,image,rotation_matrix,translation_vector"
THRESHOLDS = (0.01, 0.02, 0.05, 0.1, 0.25, 0.5)


# ------------------------------------------------------------------------ official golden files


def _bench_paths(bench_dir: Path) -> tuple[Path, Path]:
    return bench_dir / "train_labels.csv", bench_dir / "train_thresholds.csv"


def _expected(bench_dir: Path) -> dict:
    return json.loads((bench_dir / "golden" / "expected.json").read_text())


@pytest.mark.bench
@pytest.mark.parametrize("name", GOLDEN)
def test_golden_submission_matches_official_scores(bench_dir: Path, name: str) -> None:
    expected = _expected(bench_dir)[name]
    report = score_submission(bench_dir / "golden" / name, *_bench_paths(bench_dir))

    assert report.final == pytest.approx(expected["final"], abs=1e-6)
    assert list(report.datasets) == [key for key in expected if key != "final"]
    for dataset, result in report.datasets.items():
        got = {key: round(getattr(result, key), 2) for key in ("score", "mAA", "clusterness")}
        assert got == expected[dataset], dataset


@pytest.mark.bench
def test_every_golden_file_is_checked(bench_dir: Path) -> None:
    names = {name for name in _expected(bench_dir) if not name.startswith("_")}
    assert names == set(GOLDEN)


@pytest.mark.bench
def test_row_order_breaks_ties_like_the_reference(bench_dir: Path) -> None:
    """Same rows, other order: unmatched GT scenes pair with whichever cluster comes first."""
    labels, thresholds = _bench_paths(bench_dir)
    golden = bench_dir / "golden"
    plain = score_submission(golden / "sub_colmap_sift.csv", labels, thresholds)
    outliers_first = score_submission(
        golden / "sub_colmap_sift_outliers_first.csv", labels, thresholds
    )
    assert plain.datasets["middlebury"].clusterness == pytest.approx(50.0)
    assert outliers_first.datasets["middlebury"].clusterness == pytest.approx(100.0)
    assert plain.datasets["fox"] == outliers_first.datasets["fox"]


@pytest.mark.bench
def test_dataset_restriction_scores_only_those(bench_dir: Path) -> None:
    labels, thresholds = _bench_paths(bench_dir)
    submission = bench_dir / "golden" / "sub_colmap_sift.csv"
    full = score_submission(submission, labels, thresholds)
    fox = score_submission(submission, labels, thresholds, datasets=["fox"])

    assert list(fox.datasets) == ["fox"]
    assert fox.datasets["fox"] == full.datasets["fox"]
    assert fox.final == pytest.approx(full.datasets["fox"].score)


# --------------------------------------------------------------------------- synthetic scenes


def _rotation(angle: float, axis: tuple[float, float, float]) -> np.ndarray:
    """Rodrigues rotation, so poses are realistic without extra dependencies."""
    k = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    cross = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross


def _world() -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """GT scene -> image -> (world-to-camera rotation, camera centre)."""
    scenes: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for scene, count, radius in (("arch", 8, 1.0), ("tower", 6, 2.0), ("outliers", 2, 1.0)):
        cams = {}
        for i in range(count):
            angle = 2 * np.pi * i / count
            centre = np.array([radius * np.cos(angle), radius * np.sin(angle), 0.1 * (i % 3)])
            cams[f"{scene}_{i}.jpg"] = (_rotation(angle, (0.2, 0.1, 1.0)), centre)
        scenes[scene] = cams
    return scenes


def _pose_row(
    dataset: str, scene: str, image: str, rotation: np.ndarray, centre: np.ndarray
) -> str:
    translation = -rotation @ centre
    r = ";".join(repr(float(v)) for v in rotation.ravel())
    t = ";".join(repr(float(v)) for v in translation)
    return f"{dataset},{scene},{image},{r},{t}"


def _nan_row(dataset: str, scene: str, image: str) -> str:
    return f"{dataset},{scene},{image},{';'.join(['nan'] * 9)},{';'.join(['nan'] * 3)}"


def _write(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.fixture
def toy(tmp_path: Path) -> tuple[Path, Path]:
    """Labels and thresholds of a one-dataset benchmark: two scenes and two outliers."""
    rows = [
        _pose_row("toy", scene, image, rotation, centre)
        for scene, cams in _world().items()
        for image, (rotation, centre) in cams.items()
    ]
    labels = _write(tmp_path / "labels.csv", rows)
    values = ";".join(str(v) for v in THRESHOLDS)
    thresholds = _write(
        tmp_path / "thresholds.csv",
        [f"toy,arch,{values}", f"toy,tower,{values}"],
        header="dataset,scene,thresholds",
    )
    return labels, thresholds


def _submission(
    tmp_path: Path,
    *,
    scale: float = 1.0,
    rotation: np.ndarray | None = None,
    shift: np.ndarray | None = None,
    clusters: dict[str, str] | None = None,
    moved: dict[str, np.ndarray] | None = None,
    drop: set[str] = frozenset(),
) -> Path:
    """Submission of the toy world seen through a similarity, with optional edits per image."""
    q = np.eye(3) if rotation is None else rotation
    d = np.zeros(3) if shift is None else shift
    rows = []
    for scene, cams in _world().items():
        for image, (rot, centre) in cams.items():
            if image in drop:
                continue
            centre = centre + (moved or {}).get(image, 0.0)
            label = (clusters or {}).get(scene, scene)
            rows.append(_pose_row("toy", label, image, rot @ q.T, scale * q @ centre + d))
    return _write(tmp_path / "submission.csv", rows)


def test_perfect_submission_scores_100(tmp_path: Path, toy: tuple[Path, Path]) -> None:
    report = score_submission(_submission(tmp_path), *toy)
    assert report.final == pytest.approx(100.0)
    assert report.datasets["toy"] == DatasetScore(score=100.0, mAA=100.0, clusterness=100.0)


def test_similarity_transformed_submission_scores_100(
    tmp_path: Path, toy: tuple[Path, Path]
) -> None:
    """Reconstructions have their own gauge: scale, rotation and origin must not matter."""
    submission = _submission(
        tmp_path,
        scale=3.7,
        rotation=_rotation(1.1, (1.0, -2.0, 0.5)),
        shift=np.array([10.0, -4.0, 2.5]),
    )
    report = score_submission(submission, *toy)
    assert report.final == pytest.approx(100.0)


def test_all_nan_submission_scores_zero(tmp_path: Path, toy: tuple[Path, Path]) -> None:
    rows = [_nan_row("toy", "cluster0", image) for cams in _world().values() for image in cams]
    report = score_submission(_write(tmp_path / "nan.csv", rows), *toy)
    result = report.datasets["toy"]
    assert report.final == 0.0
    assert result.mAA == 0.0
    # Both GT scenes pair with the single 16-image cluster: (8 + 6) / (16 + 16).
    assert result.clusterness == pytest.approx(100 * 14 / 32)


def test_misplaced_camera_is_not_counted(tmp_path: Path, toy: tuple[Path, Path]) -> None:
    """One camera far off: arch earns 4 x (7 - 3), tower 4 x (6 - 3), out of 4 x (14 - 6)."""
    submission = _submission(tmp_path, moved={"arch_0.jpg": np.array([0.0, 0.0, 5.0])})
    result = score_submission(submission, *toy).datasets["toy"]
    assert result.mAA == pytest.approx(100 * 28 / 32)
    assert result.clusterness == pytest.approx(100.0)


def test_missing_rows_count_as_unregistered(tmp_path: Path, toy: tuple[Path, Path]) -> None:
    submission = _submission(tmp_path, drop={"tower_0.jpg", "tower_1.jpg"})
    result = score_submission(submission, *toy).datasets["toy"]
    assert result.mAA == pytest.approx(100 * (4 * 5 + 4 * 1) / 32)
    assert result.clusterness == pytest.approx(100.0)


def test_merged_scenes_halve_clusterness(tmp_path: Path, toy: tuple[Path, Path]) -> None:
    """Each GT scene registers within the merged cluster, but its 14 images count twice."""
    submission = _submission(tmp_path, clusters={"arch": "merged", "tower": "merged"})
    result = score_submission(submission, *toy).datasets["toy"]
    assert result.mAA == pytest.approx(100.0)
    assert result.clusterness == pytest.approx(50.0)


@pytest.mark.parametrize(
    ("outliers_first", "maa", "clusterness"),
    [(True, 100 * 20 / 8, 100 * 8 / 10), (False, 100 * 20 / 32, 100 * 8 / 20)],
)
def test_unmatched_scene_pairs_with_first_cluster(
    tmp_path: Path, toy: tuple[Path, Path], outliers_first: bool, maa: float, clusterness: float
) -> None:
    """Cluster c0 holds arch and the two GT outliers; tower is left unregistered in 'outliers'.

    Tower shares no image with any cluster, so it ties everywhere and the first scene label in
    the rows wins: 'outliers' counts as empty, c0 adds its 10 images and tower's 6 cameras to the
    denominators. Like the reference, the mAA denominator still deducts 3 cameras for tower when
    it pairs with 'outliers', so mAA reaches 20 / (4 x (8 - 6)) = 250 %.
    """
    world = _world()
    clustered = [
        _pose_row("toy", "c0", image, *pose)
        for scene in ("arch", "outliers")
        for image, pose in world[scene].items()
    ]
    unregistered = [_nan_row("toy", "outliers", image) for image in world["tower"]]
    rows = unregistered + clustered if outliers_first else clustered + unregistered
    result = score_submission(_write(tmp_path / "order.csv", rows), *toy).datasets["toy"]
    assert result.mAA == pytest.approx(maa)
    assert result.clusterness == pytest.approx(clusterness)


# ------------------------------------------------------------------------------- bad input


def test_missing_column_raises(tmp_path: Path, toy: tuple[Path, Path]) -> None:
    bad = _write(
        tmp_path / "bad.csv",
        ["toy,arch,arch_0.jpg,1;0;0;0;1;0;0;0;1"],
        header="dataset,scene,image,rotation_matrix",
    )
    with pytest.raises(ValueError, match="translation_vector"):
        score_submission(bad, *toy)


@pytest.mark.parametrize(
    ("rotation", "translation", "message"),
    [
        ("1;0;0;0;1;0;0;0", "0;0;0", "rotation_matrix needs 9"),
        ("1;0;0;0;1;0;0;0;1", "0;0", "translation_vector needs 3"),
        ("1;0;0;0;1;0;0;0;x", "0;0;0", "not a number"),
    ],
)
def test_wrong_values_raise(
    tmp_path: Path, toy: tuple[Path, Path], rotation: str, translation: str, message: str
) -> None:
    bad = _write(tmp_path / "bad.csv", [f"toy,arch,arch_0.jpg,{rotation},{translation}"])
    with pytest.raises(ValueError, match=message):
        score_submission(bad, *toy)


def test_wrong_field_count_raises(tmp_path: Path, toy: tuple[Path, Path]) -> None:
    bad = _write(tmp_path / "bad.csv", ["toy,arch,arch_0.jpg,1;0;0;0;1;0;0;0;1"])
    with pytest.raises(ValueError, match="line 2"):
        score_submission(bad, *toy)


def test_unknown_image_raises(tmp_path: Path, toy: tuple[Path, Path]) -> None:
    bad = _write(tmp_path / "bad.csv", [_nan_row("toy", "c0", "stranger.jpg")])
    with pytest.raises(ValueError, match=r"stranger\.jpg"):
        score_submission(bad, *toy)


def test_duplicate_image_raises(tmp_path: Path, toy: tuple[Path, Path]) -> None:
    bad = _write(tmp_path / "bad.csv", [_nan_row("toy", "c0", "arch_0.jpg")] * 2)
    with pytest.raises(ValueError, match="twice"):
        score_submission(bad, *toy)


def test_unknown_dataset_restriction_raises(tmp_path: Path, toy: tuple[Path, Path]) -> None:
    with pytest.raises(ValueError, match="nowhere"):
        score_submission(_submission(tmp_path), *toy, datasets=["nowhere"])


def test_uneven_thresholds_raise(tmp_path: Path, toy: tuple[Path, Path]) -> None:
    labels, _ = toy
    thresholds = _write(
        tmp_path / "uneven.csv",
        ["toy,arch,0.1;0.2;0.3;0.4;0.5;0.6", "toy,tower,0.1;0.2;0.3;0.4"],
        header="dataset,scene,thresholds",
    )
    with pytest.raises(ValueError, match="different numbers"):
        score_submission(_submission(tmp_path), labels, thresholds)


# ---------------------------------------------------------------------------------- output


def test_report_to_dict_and_table() -> None:
    report = ScoreReport(
        final=74.343868,
        datasets={
            "middlebury": DatasetScore(score=33.3333, mAA=25.0, clusterness=50.0),
            "fox": DatasetScore(score=95.36, mAA=91.1287, clusterness=100.0),
        },
    )
    assert report.to_dict() == {
        "final": 74.343868,
        "datasets": {
            "middlebury": {"score": 33.3333, "mAA": 25.0, "clusterness": 50.0},
            "fox": {"score": 95.36, "mAA": 91.1287, "clusterness": 100.0},
        },
    }
