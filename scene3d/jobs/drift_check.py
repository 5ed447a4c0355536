"""Drift checks as the platform runs them: which reference, a job's check, a window of jobs.

The reference a batch of photos is judged against is the one the serving model was chosen
on: the ``reference_profile`` artifact of the model version (the DVC ``profile`` stage
builds it for the versions retraining registers; the first version, the default preset
registered at first start, carries the platform's own). A version without one falls back to
the platform's own profile, ``home/drift/reference.json``, built from the benchmark at first
start when the benchmark is there (:func:`ensure_platform_reference`) or by
``scene3d drift reference DIR``. Without either, reports say ``unknown``.

A job's check keeps its features (``features.json``, what ``drift_detection_dag`` pools
over an interval), its report and Evidently's HTML in the job's ``drift`` folder.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from drift.features import DESCRIPTOR_DIM, FEATURES, FolderFeatures, collect_features
from drift.profile import ReferenceProfile
from drift.report import drift_report
from scene3d.jobs.paths import job_folder
from scene3d.names import REFERENCE_ARTIFACT
from scene3d.served import ServedModel
from scene3d.settings import Settings
from scene3d.store import JobRecord, JobStore

log = logging.getLogger(__name__)

FEATURES_FILE = "features.json"
REPORT_FILE = "report.json"
HTML_FILE = "report.html"


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` whole or not at all: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, allow_nan=False))
    os.replace(tmp, path)


def _load(path: Path) -> ReferenceProfile | None:
    if not path.is_file():
        return None
    try:
        return ReferenceProfile.load(path)
    except (OSError, ValueError) as exc:  # a broken file must not stop reconstructions
        log.warning("drift reference %s is unusable: %s", path, exc)
        return None


def ensure_platform_reference(settings: Settings) -> Path | None:
    """The platform's reference profile; built from the benchmark photos when there is
    none yet (or it cannot be read) and the benchmark folders of ``params.yaml`` exist.
    None without either."""
    target = settings.drift_reference
    if _load(target) is not None:
        return target  # an unreadable one (an older format) is rebuilt where it can be
    from pipeline.eval.candidates import benchmark_photos, params_from_dict
    from scene3d.experiments import base_params, pipeline_dir

    try:  # the photos the DVC profile stage describes: the chosen datasets of params.yaml
        params = params_from_dict(base_params(settings), pipeline_dir(settings))
    except (OSError, KeyError, ValueError) as exc:
        log.info("no benchmark to build a drift reference from: %s", exc)
        return None
    name = "+".join(bench.name for bench in params.benchmarks)
    ReferenceProfile.from_images(benchmark_photos(params), name=name).save(target)
    log.info("drift reference %r built from the benchmark photos", name)
    return target


def version_reference(settings: Settings, version: str) -> ReferenceProfile | None:
    """The reference profile model version ``version`` carries; None if it has none or
    the registry cannot be reached (the caller falls back)."""
    from scene3d import registry

    try:
        files = registry.version_files(settings, version)
    except Exception as exc:  # unreachable MLflow: drift is advisory, fall back
        log.warning("model version %s unavailable for its drift reference: %s", version, exc)
        return None
    try:
        path = registry.artifact_paths(files).get(REFERENCE_ARTIFACT)
    except registry.RegistryError as exc:
        log.warning("model version %s: %s", version, exc)
        return None
    return _load(path) if path is not None else None  # None: registered without one


def reference_for(settings: Settings, version: str | None) -> ReferenceProfile | None:
    """What photos run with model version ``version`` (None: no registered version) are
    judged against (see the module docstring)."""
    if version and settings.mlflow_tracking_uri:
        found = version_reference(settings, version)
        if found is not None:
            return found
    return _load(settings.drift_reference)


def check_images(
    settings: Settings,
    images: Sequence[Path],
    reference: ReferenceProfile | None,
    folder: Path | None = None,
) -> dict[str, Any]:
    """Drift report of ``images``; with ``folder``, their features, the report and the
    HTML are kept there."""
    features = collect_features(images)
    html = folder / HTML_FILE if folder is not None and reference is not None else None
    if folder is not None:  # a rerun without a reference leaves no page contradicting it
        (folder / HTML_FILE).unlink(missing_ok=True)
    report = drift_report(features, reference, settings.drift_rules(), html=html)
    if folder is not None:
        write_json(
            folder / FEATURES_FILE,
            {"values": features.values, "descriptors": features.descriptors},
        )
        write_json(folder / REPORT_FILE, report)
    return report


def check_job(
    settings: Settings, store: JobStore, job: JobRecord, images: Sequence[Path]
) -> dict[str, Any]:
    """The job's drift check: report stored on the job and kept in its folder."""
    folder = job_folder(settings, job.id)
    version = ServedModel.read(folder.model).version if folder.model.exists() else None
    report = check_images(settings, images, reference_for(settings, version), folder.drift)
    store.set_drift(job.id, report["drift_detected"], report["severity"], report)
    return report


def job_features(settings: Settings, job_id: str) -> FolderFeatures | None:
    """The features a job's drift check kept; None where it has not run."""
    path = job_folder(settings, job_id).drift / FEATURES_FILE
    features = FolderFeatures()
    try:
        data = json.loads(path.read_text())
        for name in FEATURES:
            features.values[name] = [float(v) for v in data["values"][name]]
        features.descriptors = [[float(v) for v in d] for d in data["descriptors"]]
    except (OSError, ValueError, KeyError, TypeError):  # none, or from another version
        return None
    n = features.n_images
    if (
        any(len(v) != n for v in features.values.values())
        or any(len(d) != DESCRIPTOR_DIM for d in features.descriptors)
        or len(features.descriptors) != n
    ):
        return None
    return features


def checked_between(
    settings: Settings, jobs: Iterable[JobRecord], start: float, end: float
) -> list[JobRecord]:
    """The jobs whose drift check wrote its features in ``[start, end)``: by when the
    photos were looked at, so a job queued across an interval's end is not missed."""
    found = []
    for job in jobs:
        try:
            mtime = (job_folder(settings, job.id).drift / FEATURES_FILE).stat().st_mtime
        except OSError:
            continue
        if start <= mtime < end:
            found.append(job)
    return found


def pooled(settings: Settings, jobs: Iterable[JobRecord]) -> tuple[FolderFeatures, list[str]]:
    """The kept features of ``jobs`` as one batch, and the ids of the jobs it holds."""
    batch = FolderFeatures()
    ids: list[str] = []
    for job in jobs:
        features = job_features(settings, job.id)
        if features is None or features.n_images == 0:
            continue
        for name in FEATURES:
            batch.values[name].extend(features.values[name])
        batch.descriptors.extend(features.descriptors)
        ids.append(job.id)
    return batch, ids
