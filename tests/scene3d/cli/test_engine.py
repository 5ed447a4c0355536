"""``scene3d reconstruct``, ``evaluate``, ``presets`` and ``demo``: exit codes, tables, clear
errors."""

from __future__ import annotations

import json
import zipfile

import pytest

from pipeline.eval.synthetic import make_collection
from scene3d.cli import main


def test_evaluate_prints_percentages_with_two_decimals(bench_dir, tmp_path, capsys) -> None:
    out_json = tmp_path / "score.json"
    code = main(
        [
            "evaluate",
            str(bench_dir / "golden" / "sub_colmap_sift.csv"),
            "--labels",
            str(bench_dir / "train_labels.csv"),
            "--thresholds",
            str(bench_dir / "train_thresholds.csv"),
            "--json",
            str(out_json),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    for value in ("74.34", "33.33", "95.36", "94.34", "91.13", "89.29"):
        assert value in printed
    assert json.loads(out_json.read_text())["final"] == pytest.approx(74.34386858795745)


def test_evaluate_refuses_a_malformed_csv(tmp_path, bench_dir, capsys) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    code = main(
        [
            "evaluate",
            str(bad),
            "--labels",
            str(bench_dir / "train_labels.csv"),
            "--thresholds",
            str(bench_dir / "train_thresholds.csv"),
        ]
    )
    assert code == 2
    assert "error" in capsys.readouterr().err


def test_reconstruct_bad_zip_exits_2_with_a_message(tmp_path, capsys) -> None:
    bad = tmp_path / "evil.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("../escape.jpg", b"x")
    code = main(["reconstruct", str(bad), "--out", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err
    assert "escape.jpg" in err and "Traceback" not in err
    assert not (tmp_path / "escape.jpg").exists()


def test_unknown_preset_is_a_clear_error(tmp_path, capsys) -> None:
    code = main(["reconstruct", str(tmp_path), "--out", str(tmp_path / "o"), "--preset", "zzz"])
    assert code == 2
    assert "unknown preset 'zzz'" in capsys.readouterr().err


@pytest.mark.slow
def test_reconstruct_prints_a_summary_table(tmp_path, capsys) -> None:
    image_dir, _, _ = make_collection(tmp_path / "sample", n_views=6, n_scenes=1, seed=1)
    code = main(
        ["reconstruct", str(image_dir), "--out", str(tmp_path / "out"), "--job-id", "abcdef0123"]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "cluster0_model0" in printed and "registered 6/6" in printed
    assert (tmp_path / "out" / "ply" / "cluster0_decimated_model0_abcdef01.ply").exists()


def test_presets_lists_the_default(capsys) -> None:
    assert main(["presets"]) == 0
    assert "sift (default)" in capsys.readouterr().out


@pytest.mark.slow
def test_demo_reconstructs_and_scores_a_generated_sample(tmp_path, capsys) -> None:
    assert main(["demo", "--home", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "registered" in printed and "final" in printed
    assert (tmp_path / "demo" / "run" / "submission.csv").exists()
