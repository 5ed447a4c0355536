"""``scene3d reconstruct``, ``evaluate``, ``presets`` and ``demo``: the engine on its own,
without the platform."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from scene3d.cli.console import console, out


def _percent(value: float) -> str:
    return f"{value:.2f}"


def cmd_reconstruct(args: argparse.Namespace) -> int:
    from pipeline.config import parse_overrides
    from pipeline.presets import load_preset
    from pipeline.reconstruct import STEPS, reconstruct

    config = load_preset(args.preset, parse_overrides(args.set))
    columns = (
        TextColumn("{task.fields[step]:<8}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    # One bar that shows the running step and how far that step has got (0-100 % each).
    with Progress(*columns, console=console, transient=not console.is_terminal) as bar:
        task = bar.add_task("", total=100, step=STEPS[0])

        def report(step: str, fraction: float, message: str) -> None:
            bar.update(task, completed=fraction * 100, step=step, description=message)

        result = reconstruct(
            Path(args.input),
            Path(args.out),
            config,
            dataset=args.dataset,
            job_id=args.job_id,
            progress=report,
        )
    table = Table(title=f"scene3d: {result.dataset} ({result.preset})")
    for col in ("cluster", "images", "points", "reproj. err (px)", "track length", "PLY"):
        table.add_column(col)
    for c in result.clusters:
        table.add_row(
            c["name"],
            str(c["num_images"]),
            str(c["num_points3D"]),
            f"{c['mean_reprojection_error']:.2f}",
            f"{c['mean_track_length']:.2f}",
            c["filename"],
        )
    out.print(table)
    out.print(
        f"registered {result.n_registered}/{result.n_images} images "
        f"({result.registration_rate:.0%}), {len(result.outliers)} outliers, "
        f"{len(result.skipped)} skipped files; peak memory {result.peak_rss_mb:.0f} MiB"
    )
    out.print("time per step: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items()))
    out.print(f"outputs in {args.out}: submission.csv, clusters.json, ply/, models/")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from pipeline.eval.scoring import score_submission

    report = score_submission(args.submission, args.labels, args.thresholds, datasets=args.dataset)
    table = Table(title="IMC2025 score (%)")
    for col in ("dataset", "score", "mAA", "clusterness"):
        table.add_column(col, justify="right" if col != "dataset" else "left")
    for name, ds in report.datasets.items():
        table.add_row(name, _percent(ds.score), _percent(ds.mAA), _percent(ds.clusterness))
    table.add_row("final", _percent(report.final), "", "", style="bold")
    out.print(table)
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=2))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Generate a small synthetic collection (two scenes and a stray photo), reconstruct
    it and score it against its known cameras: a self-contained first run."""
    from pipeline.eval.synthetic import make_collection
    from scene3d.settings import Settings

    home = Path(args.home).expanduser() if args.home else Settings.from_env().home
    sample = home / "demo" / "sample"
    labels, thresholds = sample / "train_labels.csv", sample / "train_thresholds.csv"
    image_dir = sample / "train" / "synthetic"
    if not labels.exists():
        console.print(f"generating a synthetic sample in {sample} ...")
        image_dir, labels, _ = make_collection(sample, n_views=10, n_scenes=2, n_outliers=1, seed=0)
    run_args = argparse.Namespace(
        input=str(image_dir),
        out=str(home / "demo" / "run"),
        preset=args.preset,
        dataset="synthetic",
        job_id="demo0000",
        set=None,
    )
    cmd_reconstruct(run_args)
    eval_args = argparse.Namespace(
        submission=str(home / "demo" / "run" / "submission.csv"),
        labels=str(labels),
        thresholds=str(thresholds),
        json=None,
        dataset=None,
    )
    return cmd_evaluate(eval_args)


def cmd_presets(args: argparse.Namespace) -> int:
    from pipeline.presets import DEFAULT_PRESET, PRESETS, load_preset

    for name in sorted(PRESETS):
        marker = " (default)" if name == DEFAULT_PRESET else ""
        out.print(f"[bold]{name}[/bold]{marker}: {json.dumps(PRESETS[name]) or '{}'}")
        if args.full:
            out.print_json(json.dumps(load_preset(name).to_dict()))
    return 0


def add_reconstruct(sub: argparse._SubParsersAction) -> None:
    """Add the ``reconstruct`` command to ``sub``."""
    rec = sub.add_parser("reconstruct", help="reconstruct every scene in a ZIP or folder")
    rec.add_argument("input", help="ZIP archive or folder of photos")
    rec.add_argument("--out", required=True, help="output folder (re-running resumes)")
    rec.add_argument("--preset", default="sift", help="preset name (see `scene3d presets`)")
    rec.add_argument("--dataset", default="custom", help="dataset name written to the CSV")
    rec.add_argument("--job-id", default=None, help="job id (default: a new UUID)")
    rec.add_argument(
        "--set",
        action="append",
        metavar="SECTION.SETTING=VALUE",
        help="override one preset setting, e.g. features.max_num_features=4096 (repeatable)",
    )
    rec.set_defaults(func=cmd_reconstruct)


def add_evaluate(sub: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` command to ``sub``."""
    ev = sub.add_parser("evaluate", help="score an IMC2025 submission CSV")
    ev.add_argument("submission")
    ev.add_argument("--labels", required=True, help="ground truth (train_labels.csv)")
    ev.add_argument("--thresholds", required=True, help="train_thresholds.csv")
    ev.add_argument("--json", help="also write the scores as JSON here")
    ev.add_argument("--dataset", action="append", help="score only these datasets (repeatable)")
    ev.set_defaults(func=cmd_evaluate)


def add_demo(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo`` command to ``sub``."""
    de = sub.add_parser("demo", help="reconstruct and score a generated sample collection")
    de.add_argument("--home", help="state folder for the sample (default: SCENE3D_HOME)")
    de.add_argument("--preset", default="sift")
    de.set_defaults(func=cmd_demo)


def add_presets(sub: argparse._SubParsersAction) -> None:
    """Add the ``presets`` command to ``sub``."""
    pr = sub.add_parser("presets", help="list the named presets")
    pr.add_argument("--full", action="store_true", help="print each full config")
    pr.set_defaults(func=cmd_presets)
