"""``scene3d bench``, ``bench-scaling`` and ``bench-throughput``: the evaluation tools of
:mod:`pipeline.eval`. Choice lists come from the registries (baselines, learned models)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from rich.markup import escape

from pipeline import learned
from pipeline.eval.baseline import BASELINES
from scene3d.cli.console import console, out


def cmd_bench(args: argparse.Namespace) -> int:
    from pipeline.eval.bench import run_bench
    from pipeline.eval.report import render_markdown, render_table, run_errors

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
    from pipeline.eval.scaling import run_scaling, scaling_markdown

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
    from pipeline.eval.throughput import measure, throughput_markdown
    from pipeline.ingest import IMAGE_EXTENSIONS

    folder = Path(args.images)
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    images = images[: args.num_images]
    if len(images) < 2:
        console.print(f"[red]error:[/red] need at least 2 images in {folder}")
        return 2
    rows = []
    for extractor in args.extractor or list(learned.MODELS):
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


def add_bench(sub: argparse._SubParsersAction) -> None:
    """Add the ``bench`` command to ``sub``."""
    be = sub.add_parser("bench", help="reconstruct and score an IMC2025-layout benchmark")
    be.add_argument("bench_dir")
    be.add_argument("--preset", action="append", help="preset to run (repeatable)")
    be.add_argument("--baseline", choices=sorted(BASELINES), help="also run plain pycolmap")
    be.add_argument("--dataset", action="append", help="only these datasets (repeatable)")
    be.add_argument("--out", help="work folder (default: a new temporary folder)")
    be.add_argument("--markdown", help="also write the table as Markdown here")
    be.set_defaults(func=cmd_bench)


def add_scaling(sub: argparse._SubParsersAction) -> None:
    """Add the ``bench-scaling`` command to ``sub``."""
    sc = sub.add_parser(
        "bench-scaling", help="matched pairs and matching time against collection size"
    )
    sc.add_argument("--preset", action="append", help="preset to run (repeatable)")
    sc.add_argument("--sizes", default="25,50,100,200", help="photos per collection")
    sc.add_argument("--per-scene", type=int, default=25, help="views per synthetic scene")
    sc.add_argument("--out", help="work folder (default: a new temporary folder)")
    sc.add_argument("--markdown", help="also write the table as Markdown here")
    sc.set_defaults(func=cmd_scaling)


def add_throughput(sub: argparse._SubParsersAction) -> None:
    """Add the ``bench-throughput`` command to ``sub``."""
    tp = sub.add_parser("bench-throughput", help="learned extraction images/s and matching pairs/s")
    tp.add_argument("images", help="folder of photos to measure on")
    tp.add_argument("--extractor", action="append", choices=list(learned.MODELS))
    tp.add_argument("--device", default="auto", help="auto, cpu or cuda")
    tp.add_argument("--max-size", type=int, default=1024, help="longest image side")
    tp.add_argument("--keypoints", type=int, default=2048, help="keypoints per image")
    tp.add_argument("--num-images", type=int, default=8, help="images to extract")
    tp.add_argument("--pairs", type=int, default=16, help="pairs to match")
    tp.add_argument("--batch", type=int, help="pairs per batch (default: by device)")
    tp.add_argument("--repeats", type=int, default=3, help="timed repeats (median)")
    tp.add_argument("--markdown", help="also write the table as Markdown here")
    tp.set_defaults(func=cmd_throughput)
