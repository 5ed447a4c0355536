"""Drift report: do the new photos look like the reference photos? Evidently decides.

Evidently 0.7 compares the current features with the reference profile:

* each scalar feature of :data:`drift.features.FEATURES` with the two-sample
  Kolmogorov-Smirnov test, pinned per column (Evidently would otherwise switch to another
  test once the reference passes 1,000 rows); a feature has drifted when the p-value is
  below :attr:`DriftRules.p_threshold`;
* the global descriptor as one embedding, by its maximum mean discrepancy (MMD); it has
  drifted when the MMD exceeds :attr:`DriftRules.embedding_threshold`.

Rules (:class:`DriftRules`, settings of the platform, documented in docs/drift.md):

* with fewer than ``min_images`` current images no test is trusted (Evidently calls nearly
  everything drifted for one or two photos): a feature is flagged only when the shift is
  extreme, every current value outside the reference range on one side AND the current mean
  more than ``extreme_sigmas`` reference deviations away; the descriptor is not judged;
* severity from the share of drifted checks: ``low`` below ``medium_share``, ``high`` from
  ``high_share``, ``medium`` between; ``unknown`` when there is no reference or no image;
  ``drift_detected`` is true for ``medium`` and ``high``.

Evidently is imported inside :func:`drift_report` (it takes seconds to import).
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from drift.features import DESCRIPTOR_DIM, FEATURES, FolderFeatures
from drift.profile import ReferenceProfile

DESCRIPTOR = "descriptor"
"""Name of the embedding check in a report's ``checks``."""

SEVERITY_LEVELS = {"unknown": -1.0, "low": 0.0, "medium": 1.0, "high": 2.0}
"""The number each severity is logged and exported as (``unknown``: nothing to judge by)."""

_TSNE_PERPLEXITY = 30


@dataclass(frozen=True)
class DriftRules:
    """How a drift report turns test results into a verdict."""

    p_threshold: float = 0.005
    """KS p-value below which a feature has drifted. Far below 0.05: a dozen features are
    tested at once, and at 0.05 two chance rejections would be common; a real change of 10
    photos or more scores far lower (``scene3d drift bench`` measures both)."""
    embedding_threshold: float = 0.08
    """MMD of the global descriptors above which the photos show other things (random
    halves of the benchmarks stay below 0.06, another scene's photos score 0.09 or more)."""
    medium_share: float = 0.15
    """Share of drifted checks from which severity is ``medium`` (2 of 13)."""
    high_share: float = 0.4
    """Share of drifted checks from which severity is ``high``."""
    min_images: int = 5
    """Below this many current images only extreme shifts count (see the module rules)."""
    extreme_sigmas: float = 3.0
    """Shift of the mean, in reference standard deviations, that counts as extreme."""


DEFAULT_RULES = DriftRules()


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
    "unknown": (
        "Drift could not be judged: there is no reference profile (or no readable photo). "
        "Register a model whose version carries one (the experiment pipeline does), or build "
        "one with `scene3d drift reference DIR` from photos like those you expect."
    ),
}


def recommendation(severity: str) -> str:
    """Plain-language advice for a severity; raises ``ValueError`` for an unknown one."""
    try:
        return _RECOMMENDATIONS[severity]
    except KeyError:
        raise ValueError(f"unknown severity {severity!r}") from None


def severity_of(share: float, rules: DriftRules = DEFAULT_RULES) -> str:
    """``low`` / ``medium`` / ``high`` from the share of drifted checks."""
    if share >= rules.high_share:
        return "high"
    if share >= rules.medium_share:
        return "medium"
    return "low"


def _unknown(n_images: int, reference: ReferenceProfile | None, reason: str) -> dict[str, Any]:
    return {
        "drift_detected": False,
        "severity": "unknown",
        "share_drifted": 0.0,
        "checks": {},
        "n_images": n_images,
        "reference": reference.label if reference else None,
        "reason": reason,
    }


def _frame(values: dict[str, list[float]], descriptors: list[list[float]]) -> Any:
    import pandas as pd

    data: dict[str, Any] = {name: np.asarray(values[name], dtype=float) for name in FEATURES}
    matrix = np.asarray(descriptors, dtype=float).reshape(-1, DESCRIPTOR_DIM)
    for i in range(DESCRIPTOR_DIM):
        data[f"{DESCRIPTOR}_{i}"] = matrix[:, i]
    return pd.DataFrame(data)


def _extreme(reference: list[float], current: list[float], rules: DriftRules) -> dict[str, Any]:
    """The small-sample rule for one feature: complete separation and a large shift."""
    ref, cur = np.asarray(reference, float), np.asarray(current, float)
    spread = float(ref.std())
    shift = abs(float(cur.mean()) - float(ref.mean()))
    sigmas = shift / spread if spread > 0 else (np.inf if shift > 0 else 0.0)
    separated = cur.min() > ref.max() or cur.max() < ref.min()
    return {
        "method": "extreme shift (few images)",
        "score": float(min(sigmas, 1e6)),
        "threshold": rules.extreme_sigmas,
        "drift_detected": bool(separated and sigmas > rules.extreme_sigmas),
    }


def _evidently(
    current: FolderFeatures,
    reference: ReferenceProfile,
    rules: DriftRules,
    html: Path | None,
) -> dict[str, dict[str, Any]]:
    """Run Evidently; per-check verdicts (KS from its tests, MMD against the threshold)."""
    os.environ.setdefault("DO_NOT_TRACK", "1")  # no usage telemetry from Evidently
    from evidently import DataDefinition, Dataset, Report
    from evidently.legacy.metrics.data_drift.embedding_drift_methods import mmd
    from evidently.metrics import EmbeddingsDrift
    from evidently.presets import DataDriftPreset

    columns = list(FEATURES)
    embedding = [f"{DESCRIPTOR}_{i}" for i in range(DESCRIPTOR_DIM)]
    definition = DataDefinition(
        numerical_columns=columns + embedding, embeddings={DESCRIPTOR: embedding}
    )
    items: list[Any] = [
        DataDriftPreset(
            columns=columns,
            per_column_method=dict.fromkeys(columns, "ks"),
            per_column_threshold=dict.fromkeys(columns, rules.p_threshold),
        )
    ]
    # MMD needs a few current rows, and Evidently's plot of the embeddings (t-SNE of
    # perplexity 30) fails on 30 rows or fewer in all
    judge_embedding = (
        current.n_images >= rules.min_images
        and current.n_images + reference.n_images > _TSNE_PERPLEXITY
    )
    if judge_embedding:
        method = mmd(threshold=rules.embedding_threshold, bootstrap=False)
        items.append(EmbeddingsDrift(embeddings_name=DESCRIPTOR, drift_method=method))
    with warnings.catch_warnings():  # constant columns make numpy warn; the tests hold
        warnings.simplefilter("ignore")
        snapshot = Report(items, include_tests=True).run(
            current_data=Dataset.from_pandas(
                _frame(current.values, current.descriptors), data_definition=definition
            ),
            reference_data=Dataset.from_pandas(
                _frame(reference.samples, reference.descriptors), data_definition=definition
            ),
        )
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        tmp = html.with_name(f".{html.name}.tmp")
        snapshot.save_html(str(tmp))  # a str: given a Path, 0.7.23 silently writes nothing
        os.replace(tmp, html)
    return _verdicts(json.loads(snapshot.json()), rules, judge_embedding)


def _verdicts(result: dict[str, Any], rules: DriftRules, judge_embedding: bool) -> dict:
    failed = {
        test["metric_config"]["metric_id"]
        for test in result.get("tests", [])
        if test.get("status") == "FAIL"
    }
    checks: dict[str, dict[str, Any]] = {}
    for metric in result["metrics"]:
        config = metric["config"]
        kind = config.get("type", "")
        if kind.endswith(":ValueDrift"):
            checks[config["column"]] = {
                "method": "ks p-value",
                "score": float(metric["value"]),
                "threshold": float(config["threshold"]),
                "drift_detected": metric["id"] in failed,
            }
        elif kind.endswith(":EmbeddingsDrift") and judge_embedding:
            score = float(metric["value"])
            checks[DESCRIPTOR] = {
                "method": "mmd",
                "score": score,
                "threshold": rules.embedding_threshold,
                "drift_detected": score > rules.embedding_threshold,
            }
    return checks


def drift_report(
    current: FolderFeatures,
    reference: ReferenceProfile | None,
    rules: DriftRules = DEFAULT_RULES,
    html: Path | None = None,
) -> dict[str, Any]:
    """Compare ``current`` with ``reference`` (see the module rules); Evidently's HTML
    report goes to ``html`` when given (whole or not at all).

    Without a reference, or without current images, nothing can be judged: severity is
    ``unknown`` and ``reason`` says why.
    """
    n_images = current.n_images
    if reference is None:
        return _unknown(n_images, None, "no reference profile")
    if n_images == 0:
        return _unknown(0, reference, "no readable current images")
    checks = _evidently(current, reference, rules, html)
    if n_images < rules.min_images:  # Evidently's numbers stay in the HTML, not the verdict
        checks = {
            name: _extreme(reference.samples[name], current.values[name], rules)
            for name in FEATURES
        }
    share = sum(c["drift_detected"] for c in checks.values()) / len(checks)
    severity = severity_of(share, rules)
    return {
        "drift_detected": severity in ("medium", "high"),
        "severity": severity,
        "share_drifted": round(share, 4),
        "checks": checks,
        "n_images": n_images,
        "reference": reference.label,
    }


def stored_report(report: dict[str, Any]) -> dict[str, Any]:
    """A report as stored on a job, in today's shape: reports of the former KS-only check
    (``method: "ks"``, per feature ``p_value``/``drifted``) keep their verdicts, and those
    that could not judge (no reference) say ``unknown`` rather than ``low``."""
    if report.get("method") != "ks":
        return report
    if report.get("reason"):
        report = {**report, "severity": "unknown", "drift_detected": False}
    checks = {
        name: {
            "method": "ks p-value",
            "score": float(check.get("p_value", 1.0)),
            "threshold": 0.05,
            "drift_detected": bool(check.get("drifted", False)),
        }
        for name, check in (report.get("checks") or {}).items()
    }
    share = sum(c["drift_detected"] for c in checks.values()) / len(checks) if checks else 0.0
    upgraded = {k: v for k, v in report.items() if k not in ("method", "checks")}
    return {**upgraded, "checks": checks, "share_drifted": round(share, 4)}
