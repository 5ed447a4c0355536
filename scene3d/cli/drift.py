"""``scene3d drift reference``: the drift reference profile of the platform;
``scene3d drift bench``: false-alarm and detection rates of the drift report on real photos."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scene3d.cli.console import out


def cmd_drift_reference(args: argparse.Namespace) -> int:
    """Build the drift reference profile from a folder of representative photos."""
    from drift.profile import ReferenceProfile
    from pipeline.ingest import IMAGE_EXTENSIONS
    from scene3d.settings import Settings

    folder = Path(args.folder)
    images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not images:
        raise ValueError(f"no images in {folder}")
    profile = ReferenceProfile.from_images(images, name=args.name or folder.name)
    target = Settings.from_env().drift_reference
    target.parent.mkdir(parents=True, exist_ok=True)
    profile.save(target)
    out.print(f"reference profile {profile.name!r} from {profile.n_images} images -> {target}")
    return 0


def cmd_drift_bench(args: argparse.Namespace) -> int:
    """Random halves, darkened, blurred, downscaled and foreign batches (drift.benchmark)."""
    from drift import benchmark

    roots = [Path(folder) for folder in args.folders]
    missing = [str(r) for r in roots if not (r / "train").is_dir()]
    if missing:
        raise ValueError(f"not a benchmark folder (no train/): {', '.join(missing)}")
    result = benchmark.run(roots, trials=args.trials, batch=args.batch, seed=args.seed)
    out.print(
        f"{result['photos']} photos of {len(result['scenes'])} scenes, batches of "
        f"{result['batch']}, {args.trials} trials per variant"
    )
    for name, v in result["variants"].items():
        out.print(
            f"  {name:<11} drift reported {v['drift_rate']:6.1%}   expected severity "
            f"({'/'.join(v['expected'])}) {v['expected_rate']:6.1%}   {v['severities']}"
        )
    out.print(
        f"features {result['seconds_per_image_features'] * 1000:.0f} ms per image, "
        f"report {result['seconds_per_report_median']:.2f} s (median)"
    )
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    return 0


def add_drift(sub: argparse._SubParsersAction) -> None:
    """Add the ``drift`` command to ``sub``."""
    dr = sub.add_parser("drift", help="drift reference profile and benchmark")
    dr_sub = dr.add_subparsers(dest="drift_command", required=True)
    ref = dr_sub.add_parser("reference", help="build the reference profile from a folder")
    ref.add_argument("folder")
    ref.add_argument("--name", help="profile name (default: the folder name)")
    ref.set_defaults(func=cmd_drift_reference)
    bench = dr_sub.add_parser(
        "bench", help="false-alarm and detection rates on benchmark photos (docs/benchmarks.md)"
    )
    bench.add_argument("folders", nargs="+", help="benchmark folders in IMC2025 layout")
    bench.add_argument("--trials", type=int, default=40, help="trials per variant")
    bench.add_argument("--batch", type=int, default=12, help="photos per changed batch (>= 10)")
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--out", help="write the result as JSON here")
    bench.set_defaults(func=cmd_drift_bench)
