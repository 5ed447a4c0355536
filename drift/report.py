"""Drift report: do the new photos look like the reference photos?

Each feature is compared with the two-sample Kolmogorov–Smirnov test, which makes no
assumption about the shape of the distributions and reacts to shifts in level and spread.

Rules (also the contract of the API's drift endpoint):

* a feature has drifted when the KS p-value is below :data:`P_THRESHOLD` (0.05);
* with fewer than :data:`MIN_CURRENT_IMAGES` (5) current images the p-value alone is not
  trusted (one or two photos say little about a distribution), so a feature is flagged only
  when the shift is extreme: the KS statistic is 1 (every current value lies outside the
  reference range, on the same side) AND the current mean is more than
  :data:`EXTREME_SIGMAS` (3) reference standard deviations from the reference mean;
* severity from the share of drifted features: ``low`` below 20 %, ``medium`` from 20 % to
  50 % inclusive, ``high`` above 50 %; ``drift_detected`` is ``severity != "low"``.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import ks_2samp

from drift.features import FEATURES
from drift.profile import ReferenceProfile

P_THRESHOLD = 0.05
MIN_CURRENT_IMAGES = 5
EXTREME_SIGMAS = 3.0
MEDIUM_SHARE = 0.2
HIGH_SHARE = 0.5

_RECOMMENDATIONS = {
    "low": "No action needed.",
    "medium": (
        "Moderate drift in image statistics: review the new photos and consider re-running "
        "the experiment pipeline."
    ),
    "high": (
        "Strong drift: the photos differ markedly from the reference data; retrain "
        "(POST /drift/trigger-retrain) before trusting results."
    ),
}


def recommendation(severity: str) -> str:
    """Plain-language advice for a severity; raises ``ValueError`` for an unknown one."""
    try:
        return _RECOMMENDATIONS[severity]
    except KeyError:
        raise ValueError(f"unknown severity {severity!r}") from None


def severity_of(n_drifted: int, n_checked: int) -> str:
    """``low`` / ``medium`` / ``high`` from the share of drifted features."""
    share = n_drifted / n_checked if n_checked else 0.0
    if share > HIGH_SHARE:
        return "high"
    if share >= MEDIUM_SHARE:
        return "medium"
    return "low"


def _is_extreme(reference: np.ndarray, current: np.ndarray, statistic: float) -> bool:
    """The small-sample rule: complete separation and a shift beyond 3 reference sigmas."""
    if statistic < 1.0:
        return False
    shift = abs(float(current.mean()) - float(reference.mean()))
    return shift > EXTREME_SIGMAS * float(reference.std())


def _check(reference: list[float], current: list[float]) -> dict:
    """KS test of one feature, in the report's per-feature shape."""
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    result = ks_2samp(ref, cur)
    statistic, p_value = float(result.statistic), float(result.pvalue)
    if len(cur) < MIN_CURRENT_IMAGES:
        drifted = _is_extreme(ref, cur, statistic)
    else:
        drifted = p_value < P_THRESHOLD
    return {
        "statistic": statistic,
        "p_value": p_value,
        "drifted": bool(drifted),
        "reference_mean": float(ref.mean()),
        "current_mean": float(cur.mean()),
    }


def _empty_report(n_images: int, reference: str | None, reason: str) -> dict:
    return {
        "drift_detected": False,
        "severity": "low",
        "checks": {},
        "n_images": n_images,
        "reference": reference,
        "method": "ks",
        "reason": reason,
    }


def drift_report(current: dict[str, list[float]], reference: ReferenceProfile | None) -> dict:
    """Compare current feature samples with a reference profile (see the module rules).

    Without a reference, or without current images, nothing can be tested: the report
    says so in ``reason`` and does not claim drift.
    """
    n_images = max((len(v) for v in current.values()), default=0)
    if reference is None:
        return _empty_report(n_images, None, "no reference profile")
    if n_images == 0:
        return _empty_report(0, reference.name, "no current images")
    checks = {
        name: _check(reference.samples[name], current[name])
        for name in FEATURES
        if current.get(name) and reference.samples.get(name)
    }
    n_drifted = sum(check["drifted"] for check in checks.values())
    severity = severity_of(n_drifted, len(checks))
    return {
        "drift_detected": severity != "low",
        "severity": severity,
        "checks": checks,
        "n_images": n_images,
        "reference": reference.name,
        "method": "ks",
    }
