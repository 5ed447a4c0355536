"""The whole engine on generated scenes with known cameras (no shared data needed)."""

from __future__ import annotations

import csv
import dataclasses
import json
import zipfile
from pathlib import Path

import numpy as np
import open3d as o3d
import pytest

from pipeline.errors import Cancelled, NotAZipError, ReconstructionError
from pipeline.eval.scoring import score_submission
from pipeline.eval.synthetic import make_collection, make_noise_image
from pipeline.layout import RunPaths
from pipeline.presets import load_preset
from pipeline.progress import CancelToken
from pipeline.reconstruct import STEPS, load_models, reconstruct, summarize_run

pytestmark = pytest.mark.slow

JOB = "0123456789abcdef"


def _config():
    # One thread: the run is deterministic for a fixed seed and thread count.
    return load_preset(
        "sift",
        {
            "features": {"num_threads": 1},
            "matching": {"num_threads": 1},
            "mapping": {"num_threads": 1},
        },
    )


@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("synthetic")
    return make_collection(root, n_views=8, n_scenes=2, n_outliers=1, seed=3)


@pytest.fixture(scope="module")
def run(collection, tmp_path_factory):
    image_dir, _, _ = collection
    out = tmp_path_factory.mktemp("run")
    events: list[tuple[str, float, str]] = []
    result = reconstruct(
        image_dir,
        out,
        _config(),
        dataset="synthetic",
        job_id=JOB,
        progress=lambda s, f, m: events.append((s, f, m)),
    )
    return result, out, events


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_two_scenes_become_two_clusters_and_the_stray_photo_an_outlier(run, collection) -> None:
    result, _, _ = run
    names = {c["name"] for c in result.clusters}
    assert {"cluster0_model0", "cluster1_model0"} <= names
    assert result.n_images == 17
    assert result.n_registered >= 15
    assert len(result.outliers) >= 1
    assert all("outlier" in n or "noise" in n for n in result.outliers[:1])
    # each cluster holds photos of one scene only
    for cluster in result.clusters:
        prefixes = {img.split("_")[0] for img in cluster["images"]}
        assert len(prefixes) == 1, cluster["images"]


def test_poses_match_ground_truth(run, collection) -> None:
    _, out, _ = run
    _, labels, thresholds = collection
    report = score_submission(out / "submission.csv", labels, thresholds)
    assert report.datasets["synthetic"].mAA > 90.0
    assert report.final > 90.0


def test_csv_rows_in_documented_order(run) -> None:
    result, out, _ = run
    rows = _rows(out / "submission.csv")
    assert list(rows[0]) == ["dataset", "scene", "image", "rotation_matrix", "translation_vector"]
    assert len(rows) == result.n_images
    scenes = [r["scene"] for r in rows]
    clusters = [s for s in dict.fromkeys(scenes) if s != "outliers"]
    assert clusters == sorted(clusters)
    assert scenes[-len(result.outliers) :] == ["outliers"] * len(result.outliers)
    for scene in dict.fromkeys(scenes):
        images = [r["image"] for r in rows if r["scene"] == scene]
        assert images == sorted(images)
    for row in rows:
        rot = np.array(row["rotation_matrix"].split(";"), dtype=float)
        if row["scene"] == "outliers":
            assert np.isnan(rot).all()
        else:
            R = rot.reshape(3, 3)
            np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-6)


def test_ply_files_and_cluster_stats(run) -> None:
    result, out, _ = run
    stats = json.loads((out / "clusters.json").read_text())["clusters"]
    assert [c["name"] for c in stats] == [c["name"] for c in result.clusters]
    for i, cluster in enumerate(stats):
        assert cluster["id"] == i
        assert cluster["filename"] == (
            f"{cluster['name'].replace('_model', '_decimated_model')}_{JOB[:8]}.ply"
        )
        raw = o3d.io.read_point_cloud(str(out / "ply" / cluster["raw_filename"]))
        dec = o3d.io.read_point_cloud(str(out / "ply" / cluster["filename"]))
        assert len(raw.points) == cluster["num_points3D"] > 100
        assert 0 < len(dec.points) == cluster["num_points_decimated"] <= len(raw.points)
        assert (out / "ply" / cluster["filename"]).read_bytes().startswith(b"ply\nformat binary")
        assert 0 < cluster["mean_reprojection_error"] < 2.0
        assert cluster["mean_track_length"] > 2.0
        assert (out / cluster["model_dir"] / "images.bin").exists()


def test_progress_moves_forward_through_the_steps(run) -> None:
    _, _, events = run
    steps = [s for s, _, _ in events]
    order = [STEPS.index(s) for s in steps]
    assert order == sorted(order)
    assert set(steps) == set(STEPS)
    for step in STEPS:
        fractions = [f for s, f, _ in events if s == step]
        assert fractions == sorted(fractions)
        assert all(0.0 <= f <= 1.0 for f in fractions)
        assert fractions[-1] == 1.0
    # long steps report as they go, not once at the end
    assert sum(s == "features" for s in steps) >= 3
    assert sum(s == "matching" for s in steps) >= 3


def test_the_summary_reads_back_from_the_run_folder(run) -> None:
    result, out, _ = run
    again = summarize_run(
        RunPaths(out), job_id=JOB, dataset="synthetic", preset="sift", timings=result.timings
    )
    assert again == dataclasses.replace(result, peak_rss_mb=0.0)
    assert json.loads((out / "summary.json").read_text()) == json.loads(
        json.dumps(result.to_dict())
    )
    models = load_models(RunPaths(out))
    assert [m.name for m in models] == [c["name"] for c in result.clusters]
    assert all(m.load().num_reg_images() >= 3 for m in models)


def test_an_unfinished_run_has_no_models_and_no_summary(tmp_path) -> None:
    with pytest.raises(ReconstructionError, match="mapping has not finished"):
        load_models(RunPaths(tmp_path))
    with pytest.raises(ReconstructionError, match="export has not finished"):
        summarize_run(RunPaths(tmp_path), job_id=JOB, dataset="d", preset="sift")


def test_rerun_resumes_and_gives_the_same_files(run, collection) -> None:
    result, out, _ = run
    before = (out / "submission.csv").read_bytes()
    again = reconstruct(collection[0], out, _config(), dataset="synthetic", job_id=JOB)
    assert (out / "submission.csv").read_bytes() == before
    assert again.timings["features"] < 0.5 and again.timings["mapping"] < 2.0
    assert again.n_registered == result.n_registered


def test_same_seed_gives_the_same_poses(run, collection, tmp_path) -> None:
    _, out, _ = run
    reconstruct(collection[0], tmp_path, _config(), dataset="synthetic", job_id=JOB)
    assert (tmp_path / "submission.csv").read_bytes() == (out / "submission.csv").read_bytes()


def test_zip_input_gives_same_images(collection, tmp_path) -> None:
    image_dir, _, _ = collection
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(image_dir.iterdir())[:5]:
            zf.write(path, f"photos/{path.name}")
    token = CancelToken()
    seen: list[str] = []

    def stop_after_ingest(step: str, fraction: float, message: str) -> None:
        seen.append(step)
        if step == "features":
            token.cancel()

    with pytest.raises(Cancelled):
        reconstruct(archive, tmp_path / "out", _config(), progress=stop_after_ingest, cancel=token)
    manifest = json.loads(RunPaths(tmp_path / "out").manifest.read_text())
    assert len(manifest["images"]) == 5
    assert "ingest" in seen


def test_unmatchable_photos_fail_with_a_clear_error(tmp_path) -> None:
    photos = tmp_path / "noise"
    photos.mkdir()
    for i in range(4):
        make_noise_image(photos / f"noise_{i}.png", seed=i)
    with pytest.raises(ReconstructionError, match="no scene could be reconstructed"):
        reconstruct(photos, tmp_path / "out", _config())
    rows = _rows(tmp_path / "out" / "submission.csv")
    assert [r["scene"] for r in rows] == ["outliers"] * 4


def test_refused_input_writes_nothing(tmp_path) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip at all")
    with pytest.raises(NotAZipError):
        reconstruct(bad, tmp_path / "out", _config())
    assert not (tmp_path / "out" / "images").exists()
