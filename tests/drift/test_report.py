"""Drift reports (drift.report)."""

from __future__ import annotations

import json

import pytest

from drift.features import FEATURES, folder_features
from drift.profile import ReferenceProfile
from drift.report import drift_report, recommendation, severity_of
from tests.drift.conftest import MakeImages

CHECK_KEYS = {"statistic", "p_value", "drifted", "reference_mean", "current_mean"}
REPORT_KEYS = {"drift_detected", "severity", "checks", "n_images", "reference", "method"}


@pytest.fixture
def reference(make_images: MakeImages) -> ReferenceProfile:
    return ReferenceProfile.from_images(make_images("ref", range(30)), "baseline")


def test_same_images_no_drift(reference: ReferenceProfile) -> None:
    report = drift_report(reference.samples, reference)
    assert set(report) == REPORT_KEYS
    assert report["drift_detected"] is False
    assert report["severity"] == "low"
    assert report["n_images"] == 30
    assert report["reference"] == "baseline"
    assert report["method"] == "ks"
    assert set(report["checks"]) == set(FEATURES)
    for check in report["checks"].values():
        assert set(check) == CHECK_KEYS
        assert check["drifted"] is False
        assert check["statistic"] == 0.0
    json.dumps(report)  # plain Python types only


def test_same_distribution_is_low(reference: ReferenceProfile, make_images: MakeImages) -> None:
    current = folder_features(make_images("cur", range(100, 115)))
    report = drift_report(current, reference)
    assert report["severity"] == "low"
    assert report["drift_detected"] is False
    assert report["n_images"] == 15


def test_shifted_images_high(reference: ReferenceProfile, make_images: MakeImages) -> None:
    shifted = make_images("dark", range(200, 210), size=(80, 80), gain=0.15, blur=3, colour=False)
    report = drift_report(folder_features(shifted), reference)
    assert report["drift_detected"] is True
    assert report["severity"] == "high"
    checks = report["checks"]
    for name in ("brightness", "sharpness", "saturation", "width", "aspect"):
        assert checks[name]["drifted"], name
        assert checks[name]["p_value"] < 0.05
    assert checks["brightness"]["current_mean"] < checks["brightness"]["reference_mean"]


def test_few_images_only_extreme_shift(
    reference: ReferenceProfile, make_images: MakeImages
) -> None:
    similar = folder_features(make_images("similar", range(300, 302)))
    assert drift_report(similar, reference)["severity"] == "low"
    extreme = make_images("extreme", range(400, 402), size=(80, 80), gain=0.1, blur=3, colour=False)
    report = drift_report(folder_features(extreme), reference)
    assert report["n_images"] == 2
    assert report["checks"]["brightness"]["drifted"]
    assert report["severity"] == "high"


def test_no_reference_shape() -> None:
    report = drift_report({"brightness": [0.1, 0.2]}, None)
    assert report == {
        "drift_detected": False,
        "severity": "low",
        "checks": {},
        "n_images": 2,
        "reference": None,
        "method": "ks",
        "reason": "no reference profile",
    }


def test_no_current_images(reference: ReferenceProfile) -> None:
    report = drift_report({name: [] for name in FEATURES}, reference)
    assert report["drift_detected"] is False
    assert report["checks"] == {}
    assert report["n_images"] == 0
    assert report["reason"] == "no current images"


@pytest.mark.parametrize(
    ("drifted", "checked", "severity"),
    [
        (0, 9, "low"),
        (1, 9, "low"),
        (1, 5, "medium"),
        (2, 9, "medium"),
        (5, 10, "medium"),
        (6, 10, "high"),
        (9, 9, "high"),
        (0, 0, "low"),
    ],
)
def test_severity_thresholds(drifted: int, checked: int, severity: str) -> None:
    assert severity_of(drifted, checked) == severity


def test_recommendations() -> None:
    assert recommendation("low") == "No action needed."
    assert "review" in recommendation("medium")
    assert "POST /drift/trigger-retrain" in recommendation("high")
    with pytest.raises(ValueError):
        recommendation("extreme")
