"""The ``scene3d`` command line.

Exit codes: 0 success, 1 the work ran but failed (nothing reconstructed),
2 the input or the options were refused (clear message, nothing changed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline.errors import IngestError, ReconstructionError, Scene3DError
from scene3d import users_cli

console = Console(stderr=True)
# Wide enough for the tables when the output is a file or a CI log, not a terminal.
out = Console(width=None if Console().is_terminal else 160)


def _percent(value: float) -> str:
    return f"{value:.2f}"


def cmd_reconstruct(args: argparse.Namespace) -> int:
    from pipeline.config import parse_overrides
    from pipeline.presets import load_preset
    from pipeline.reconstruct import reconstruct

    config = load_preset(args.preset, parse_overrides(args.set))
    columns = (
        TextColumn("{task.fields[stage]:<13}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=console, transient=not console.is_terminal) as bar:
        task = bar.add_task("", total=100, stage="extracting")

        def report(stage: str, fraction: float, message: str) -> None:
            bar.update(task, completed=fraction * 100, stage=stage, description=message)

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
    from pipeline.scoring import score_submission

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


def cmd_bench(args: argparse.Namespace) -> int:
    from pipeline.bench import run_bench
    from pipeline.bench_report import render_markdown, render_table, run_errors

    bench_dir = Path(args.bench_dir)
    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="scene3d-bench-"))
    presets = args.preset or ["sift"]

    def on_run(method: str, dataset: str) -> None:
        console.print(f"[dim]running {method} on {dataset}...[/dim]")

    report = run_bench(bench_dir, work, presets, args.baseline, args.dataset, on_run)
    out.print(render_table(report))
    for line in run_errors(report):
        console.print(f"[red]failed:[/red] {escape(line)}")
    if args.markdown:
        Path(args.markdown).write_text(render_markdown(report))
    console.print(f"work folder: {work}")
    return 0


def cmd_scaling(args: argparse.Namespace) -> int:
    from pipeline.bench_scaling import run_scaling, scaling_markdown

    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="scene3d-scaling-"))
    sizes = [int(s) for s in args.sizes.split(",")]

    def on_run(preset: str, photos: int) -> None:
        console.print(f"[dim]running {preset} on {photos} photos...[/dim]")

    runs = run_scaling(args.preset or ["sift"], work, sizes, args.per_scene, on_run)
    table = scaling_markdown(runs)
    out.print(table, markup=False, highlight=False)
    if args.markdown:
        Path(args.markdown).write_text(table)
    console.print(f"work folder: {work}")
    return 0


def cmd_throughput(args: argparse.Namespace) -> int:
    from pipeline.bench_throughput import measure, throughput_markdown
    from pipeline.ingest import IMAGE_EXTENSIONS

    folder = Path(args.images)
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    images = images[: args.num_images]
    if len(images) < 2:
        console.print(f"[red]error:[/red] need at least 2 images in {folder}")
        return 2
    rows = []
    for extractor in args.extractor or ["aliked", "disk", "xfeat"]:
        console.print(f"[dim]measuring {extractor} on {args.device}...[/dim]")
        rows.append(
            measure(
                images,
                extractor,
                args.device,
                args.max_size,
                args.keypoints,
                args.pairs,
                args.batch,
                args.repeats,
            )
        )
    table = throughput_markdown(rows)
    out.print(table, markup=False, highlight=False)
    if args.markdown:
        Path(args.markdown).write_text(table)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Generate a small synthetic collection (two scenes and a stray photo), reconstruct
    it and score it against its known cameras: a self-contained first run."""
    from pipeline.synthetic import make_collection

    home = Path(args.home).expanduser()
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
    )
    cmd_reconstruct(run_args)
    eval_args = argparse.Namespace(
        submission=str(home / "demo" / "run" / "submission.csv"),
        labels=str(labels),
        thresholds=str(thresholds),
        json=None,
    )
    return cmd_evaluate(eval_args)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the API on loopback with the embedded defaults (SQLite, local job runner)."""
    import uvicorn

    from scene3d.bootstrap import ensure_admin
    from scene3d.settings import Settings
    from scene3d.store import JobStore

    settings = Settings.from_env()
    store = JobStore(settings.database_url)
    store.migrate()
    generated = ensure_admin(store, settings)
    store.close()
    out.print(f"scene3d API on http://{args.host}:{args.port}  (state in {settings.home})")
    if generated:
        out.print(
            f"created user [bold]admin[/bold] with password [bold]{generated}[/bold] "
            f"(shown once; also in {settings.secrets_dir / 'admin_password'}, mode 0600)"
        )
    else:
        out.print("log in as an existing user (see `scene3d users list`)")
    uvicorn.run(
        "api.main:create_app", factory=True, host=args.host, port=args.port, log_level="info"
    )
    return 0


def cmd_drift_reference(args: argparse.Namespace) -> int:
    """Build the drift reference profile from a folder of representative photos."""
    from drift.profile import ReferenceProfile
    from drift.service import reference_path
    from pipeline.ingest import IMAGE_EXTENSIONS
    from scene3d.settings import Settings

    folder = Path(args.folder)
    images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not images:
        raise ValueError(f"no images in {folder}")
    profile = ReferenceProfile.from_images(images, name=args.name or folder.name)
    target = reference_path(Settings.from_env())
    target.parent.mkdir(parents=True, exist_ok=True)
    profile.save(target)
    out.print(f"reference profile {profile.name!r} from {profile.n_images} images -> {target}")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    """Start the whole platform; stay in the foreground until Ctrl-C unless --detach."""
    import signal
    import threading
    import time

    from scene3d.platform import Ports, down, up
    from scene3d.settings import Settings

    settings = Settings.from_env()
    ports = Ports.from_env()
    start = time.monotonic()
    try:
        platform, generated, _ = up(settings, ports, log=lambda m: console.print(f"[dim]{m}[/dim]"))
    except KeyboardInterrupt:  # `up` has already stopped what it had started
        console.print("interrupted during start-up; everything started was stopped")
        return 130
    except RuntimeError as exc:  # a service did not come up; `up` stopped the others
        console.print(f"[red]failed to start:[/red] {escape(str(exc))}")
        return 1
    out.print(f"scene3d is up in {time.monotonic() - start:.0f} s (state in {settings.home})")
    for name, url in platform.urls.items():
        out.print(f"  {name:<8} {url}")
    if generated:
        out.print(
            f"API user [bold]admin[/bold], password [bold]{generated}[/bold] (shown once; kept "
            f"in {settings.secrets_dir / 'admin_password'}, mode 0600)"
        )
    out.print(
        f"Airflow UI user 'scene3d'; password in {settings.secrets_dir / 'airflow_passwords.json'}"
    )
    if args.detach:
        out.print("running in the background; stop with `scene3d down`")
        return 0
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    out.print("press Ctrl-C to stop")
    stop.wait()
    out.print("stopping ...")
    down(settings)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from scene3d.platform import down
    from scene3d.settings import Settings

    killed = down(Settings.from_env())
    out.print("stopped" + (f" (had to kill {len(killed)} processes)" if killed else ""))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    import psutil

    from scene3d.platform import status
    from scene3d.settings import Settings

    rows = status(Settings.from_env())
    if not rows:
        out.print("nothing is running")
        return 1
    table = Table(title="scene3d services")
    for col in ("service", "pid", "running", "healthy", "memory MiB (with children)"):
        table.add_column(col)
    for row in rows:
        rss = 0
        try:
            proc = psutil.Process(row["pid"])
            rss = sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])
        except psutil.Error:
            pass
        healthy = "-" if row["healthy"] is None else ("yes" if row["healthy"] else "no")
        table.add_row(
            row["name"],
            str(row["pid"]),
            "yes" if row["alive"] else "no",
            healthy,
            f"{rss / 1024**2:.0f}",
        )
    out.print(table)
    return 0 if all(r["alive"] for r in rows) else 1


def cmd_presets(args: argparse.Namespace) -> int:
    from pipeline.presets import DEFAULT_PRESET, PRESETS, load_preset

    for name in sorted(PRESETS):
        marker = " (default)" if name == DEFAULT_PRESET else ""
        out.print(f"[bold]{name}[/bold]{marker}: {json.dumps(PRESETS[name]) or '{}'}")
        if args.full:
            out.print_json(json.dumps(load_preset(name).to_dict()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scene3d", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="show COLMAP's own log")
    sub = parser.add_subparsers(dest="command", required=True)

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

    ev = sub.add_parser("evaluate", help="score an IMC2025 submission CSV")
    ev.add_argument("submission")
    ev.add_argument("--labels", required=True, help="ground truth (train_labels.csv)")
    ev.add_argument("--thresholds", required=True, help="train_thresholds.csv")
    ev.add_argument("--json", help="also write the scores as JSON here")
    ev.add_argument("--dataset", action="append", help="score only these datasets (repeatable)")
    ev.set_defaults(func=cmd_evaluate)

    be = sub.add_parser("bench", help="reconstruct and score an IMC2025-layout benchmark")
    be.add_argument("bench_dir")
    be.add_argument("--preset", action="append", help="preset to run (repeatable)")
    be.add_argument("--baseline", choices=["colmap"], help="also run plain pycolmap")
    be.add_argument("--dataset", action="append", help="only these datasets (repeatable)")
    be.add_argument("--out", help="work folder (default: a new temporary folder)")
    be.add_argument("--markdown", help="also write the table as Markdown here")
    be.set_defaults(func=cmd_bench)

    sc = sub.add_parser(
        "bench-scaling", help="matched pairs and matching time against collection size"
    )
    sc.add_argument("--preset", action="append", help="preset to run (repeatable)")
    sc.add_argument("--sizes", default="25,50,100,200", help="photos per collection")
    sc.add_argument("--per-scene", type=int, default=25, help="views per synthetic scene")
    sc.add_argument("--out", help="work folder (default: a new temporary folder)")
    sc.add_argument("--markdown", help="also write the table as Markdown here")
    sc.set_defaults(func=cmd_scaling)

    tp = sub.add_parser("bench-throughput", help="learned extraction images/s and matching pairs/s")
    tp.add_argument("images", help="folder of photos to measure on")
    tp.add_argument("--extractor", action="append", choices=["aliked", "disk", "xfeat"])
    tp.add_argument("--device", default="auto", help="auto, cpu or cuda")
    tp.add_argument("--max-size", type=int, default=1024, help="longest image side")
    tp.add_argument("--keypoints", type=int, default=2048, help="keypoints per image")
    tp.add_argument("--num-images", type=int, default=8, help="images to extract")
    tp.add_argument("--pairs", type=int, default=16, help="pairs to match")
    tp.add_argument("--batch", type=int, help="pairs per batch (default: by device)")
    tp.add_argument("--repeats", type=int, default=3, help="timed repeats (median)")
    tp.add_argument("--markdown", help="also write the table as Markdown here")
    tp.set_defaults(func=cmd_throughput)

    de = sub.add_parser("demo", help="reconstruct and score a generated sample collection")
    de.add_argument("--home", default=os.environ.get("SCENE3D_HOME", "~/.scene3d"))
    de.add_argument("--preset", default="sift")
    de.set_defaults(func=cmd_demo)

    users_cli.register(sub)

    dr = sub.add_parser("drift", help="drift reference profile")
    dr_sub = dr.add_subparsers(dest="drift_command", required=True)
    ref = dr_sub.add_parser("reference", help="build the reference profile from a folder")
    ref.add_argument("folder")
    ref.add_argument("--name", help="profile name (default: the folder name)")
    ref.set_defaults(func=cmd_drift_reference)

    upp = sub.add_parser("up", help="start the whole platform (MLflow, Airflow, Ray Serve)")
    upp.add_argument("--detach", action="store_true", help="return once everything is up")
    upp.set_defaults(func=cmd_up)
    sub.add_parser("down", help="stop everything `up` started").set_defaults(func=cmd_down)
    sub.add_parser("status", help="show what runs").set_defaults(func=cmd_status)

    sv = sub.add_parser("serve", help="run the API (embedded defaults) on 127.0.0.1:8000")
    sv.add_argument("--host", default=os.environ.get("SCENE3D_API_HOST", "127.0.0.1"))
    sv.add_argument("--port", type=int, default=int(os.environ.get("SCENE3D_API_PORT", "8000")))
    sv.set_defaults(func=cmd_serve)

    pr = sub.add_parser("presets", help="list the named presets")
    pr.add_argument("--full", action="store_true", help="print each full config")
    pr.set_defaults(func=cmd_presets)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from pipeline.reconstruct import set_colmap_logging

    set_colmap_logging(args.verbose)
    try:
        return args.func(args)
    except (IngestError, KeyError, ValueError, FileNotFoundError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        console.print(f"[red]error:[/red] {message}")
        return 2
    except (ReconstructionError, Scene3DError) as exc:
        console.print(f"[red]failed:[/red] {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
