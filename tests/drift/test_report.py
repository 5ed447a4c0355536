"""Drift reports (drift.report): Evidently's tests on synthetic frames, the small-sample
rule, severities, and the shape the API returns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drift.features import FEATURES, FolderFeatures, collect_features
from drift.profile import ReferenceProfile
from drift.report import (
    DESCRIPTOR,
    DriftRules,
    drift_report,
    recommendation,
    severity_of,
    stored_report,
)
from tests.drift.conftest import MakeImages

CHECK_KEYS = {"method", "score", "threshold", "drift_detected"}
REPORT_KEYS = {
    "drift_detected",
    "severity",
    "share_drifted",
    "checks",
    "n_images",
    "reference",
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> ReferenceProfile:
    from tests.drift.conftest import make_image

    folder = tmp_path_factory.mktemp("ref")
    paths = [make_image(folder / f"ref_{s}.png", s) for s in range(40)]
    return ReferenceProfile.from_images(paths, "baseline")


def test_same_distribution_is_low_and_plain_json(
    reference: ReferenceProfile, make_images: MakeImages, tmp_path: Path
) -> None:
    html = tmp_path / "out" / "report.html"
    report = drift_report(
        collect_features(make_images("cur", range(100, 120))), reference, html=html
    )
    assert set(report) == REPORT_KEYS
    assert report["severity"] == "low" and report["drift_detected"] is False
    assert report["n_images"] == 20
    assert report["reference"] == "baseline (40 images)"
    assert set(report["checks"]) == {*FEATURES, DESCRIPTOR}
    for name, check in report["checks"].items():
        assert set(check) == CHECK_KEYS
        expected = "mmd" if name == DESCRIPTOR else "ks p-value"
        assert check["method"] == expected
    json.dumps(report, allow_nan=False)  # plain Python types only
    assert b"Value Drift for column brightness" in html.read_bytes()  # Evidently's own page


def test_darkened_blurred_grey_frames_are_high(
    reference: ReferenceProfile, make_images: MakeImages
) -> None:
    shifted = make_images("dark", range(200, 212), size=(80, 80), gain=0.15, blur=3, colour=False)
    report = drift_report(collect_features(shifted), reference)
    assert report["drift_detected"] is True and report["severity"] == "high"
    checks = report["checks"]
    for name in ("brightness", "sharpness", "saturation", "long_side", "aspect", DESCRIPTOR):
        assert checks[name]["drift_detected"], name
    assert checks["brightness"]["score"] < checks["brightness"]["threshold"]
    assert checks[DESCRIPTOR]["score"] > checks[DESCRIPTOR]["threshold"]
    assert report["share_drifted"] >= DriftRules().high_share


@pytest.mark.parametrize("count", [1, 2])
def test_one_or_two_images_only_extreme_shifts(
    count: int, reference: ReferenceProfile, make_images: MakeImages, tmp_path: Path
) -> None:
    """Evidently calls nearly everything drifted for one or two photos: the small-sample
    rule decides, and the HTML is still written."""
    similar = collect_features(make_images("similar", range(300, 300 + count)))
    html = tmp_path / "few.html"
    report = drift_report(similar, reference, html=html)
    assert report["severity"] == "low" and report["n_images"] == count
    assert set(report["checks"]) == set(FEATURES)  # no descriptor verdict from so few
    assert {c["method"] for c in report["checks"].values()} == {"extreme shift (few images)"}
    assert html.is_file()
    extreme = make_images("extreme", range(400, 400 + count), size=(80, 80), gain=0.1, blur=3)
    report = drift_report(collect_features(extreme), reference)
    assert report["checks"]["brightness"]["drift_detected"]
    assert report["severity"] == "high"


def test_no_reference_is_unknown_not_low() -> None:
    report = drift_report(FolderFeatures(), None)
    assert report == {
        "drift_detected": False,
        "severity": "unknown",
        "share_drifted": 0.0,
        "checks": {},
        "n_images": 0,
        "reference": None,
        "reason": "no reference profile",
    }
    assert "scene3d drift reference" in recommendation("unknown")


def test_no_current_images(reference: ReferenceProfile) -> None:
    report = drift_report(FolderFeatures(), reference)
    assert report["severity"] == "unknown" and report["checks"] == {}
    assert report["reason"] == "no readable current images"


def test_rules_are_settings(reference: ReferenceProfile, make_images: MakeImages) -> None:
    """A stricter p-value threshold turns a drifted feature into an undrifted one."""
    shifted = collect_features(make_images("dim", range(500, 512), gain=0.8))
    loose = drift_report(shifted, reference, DriftRules(p_threshold=0.05))
    strict = drift_report(shifted, reference, DriftRules(p_threshold=1e-30))
    assert loose["checks"]["brightness"]["drift_detected"]
    assert not strict["checks"]["brightness"]["drift_detected"]
    assert strict["checks"]["brightness"]["threshold"] == 1e-30


@pytest.mark.parametrize(
    ("share", "severity"),
    [(0.0, "low"), (0.14, "low"), (0.15, "medium"), (0.39, "medium"), (0.4, "high"), (1, "high")],
)
def test_severity_thresholds(share: float, severity: str) -> None:
    assert severity_of(share) == severity


def test_recommendations() -> None:
    assert recommendation("low") == "No action needed."
    assert "review" in recommendation("medium")
    assert "POST /drift/trigger-retrain" in recommendation("high")
    with pytest.raises(ValueError):
        recommendation("extreme")


def test_reports_of_the_former_ks_check_keep_their_verdicts() -> None:
    old = {
        "drift_detected": True,
        "severity": "medium",
        "method": "ks",
        "n_images": 8,
        "reference": "r",
        "checks": {
            "brightness": {"statistic": 0.9, "p_value": 0.001, "drifted": True},
            "contrast": {"statistic": 0.1, "p_value": 0.8, "drifted": False},
        },
    }
    new = stored_report(old)
    assert new["checks"]["brightness"] == {
        "method": "ks p-value",
        "score": 0.001,
        "threshold": 0.05,
        "drift_detected": True,
    }
    assert new["share_drifted"] == 0.5 and "method" not in new
    assert stored_report(new) == new
