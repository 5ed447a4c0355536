"""The ``scene3d`` command line.

Exit codes: 0 success, 1 the work ran but failed (nothing reconstructed),
2 the input or the options were refused (clear message, nothing changed).

One module per command group: :mod:`~scene3d.cli.engine` (reconstruct, evaluate, presets,
demo), :mod:`~scene3d.cli.bench` (the benchmarks), :mod:`~scene3d.cli.users`,
:mod:`~scene3d.cli.drift`, :mod:`~scene3d.cli.experiment` (the stages of ``dvc.yaml``),
:mod:`~scene3d.cli.platform` (up, down, watch, status, serve, prepare) and
:mod:`~scene3d.cli.deploy` (the docker-compose secrets).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from pipeline.errors import IngestError, ReconstructionError, Scene3DError
from scene3d.cli import bench, deploy, drift, engine, experiment, platform, users
from scene3d.cli.console import console

# The commands in the order ``scene3d --help`` lists them.
_COMMANDS = (
    engine.add_reconstruct,
    engine.add_evaluate,
    bench.add_bench,
    bench.add_scaling,
    bench.add_throughput,
    experiment.add_experiment,
    engine.add_demo,
    users.add_users,
    drift.add_drift,
    platform.add_up,
    platform.add_down,
    platform.add_watch,
    platform.add_status,
    platform.add_serve,
    platform.add_prepare,
    deploy.add_deploy,
    engine.add_presets,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scene3d", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="show COLMAP's own log")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in _COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from pipeline.reconstruct import set_colmap_logging

    set_colmap_logging(args.verbose)
    try:
        return args.func(args)
    except (IngestError, KeyError, ValueError, FileNotFoundError, FileExistsError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        console.print(f"[red]error:[/red] {message}")
        return 2
    except (ReconstructionError, Scene3DError) as exc:
        console.print(f"[red]failed:[/red] {exc}")
        return 1
