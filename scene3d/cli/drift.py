"""``scene3d drift reference``: the drift reference profile of the platform."""

from __future__ import annotations

import argparse
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


def add_drift(sub: argparse._SubParsersAction) -> None:
    """Add the ``drift`` command to ``sub``."""
    dr = sub.add_parser("drift", help="drift reference profile")
    dr_sub = dr.add_subparsers(dest="drift_command", required=True)
    ref = dr_sub.add_parser("reference", help="build the reference profile from a folder")
    ref.add_argument("folder")
    ref.add_argument("--name", help="profile name (default: the folder name)")
    ref.set_defaults(func=cmd_drift_reference)
