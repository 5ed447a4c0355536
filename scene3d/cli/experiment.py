"""``scene3d experiment <stage>``: the commands of the benchmark pipeline's stages
(``dvc.yaml``): validate, profile, sweep, train, evaluate, select.

Each reads ``params.yaml`` (``--params``) and writes only its own outputs, so ``dvc repro``
can skip what did not change. The logic is in :mod:`pipeline.eval` (and :mod:`drift` for
the reference profile); these functions parse arguments and write files.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from scene3d.cli.console import console, out


def _params(args: argparse.Namespace) -> Any:
    from pipeline.eval.candidates import load_params

    return load_params(Path(args.params))


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


def cmd_validate(args: argparse.Namespace) -> int:
    from pipeline.eval.sweep import validate

    report = validate(_params(args))
    _write(Path(args.out), report)
    out.print(f"benchmark usable: {json.dumps(report['images'])}")
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from drift.profile import ReferenceProfile
    from pipeline.eval.candidates import benchmark_photos

    params = _params(args)
    name = "+".join(b.name for b in params.benchmarks)
    profile = ReferenceProfile.from_images(benchmark_photos(params), name=name)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    profile.save(Path(args.out))
    out.print(f"reference profile from {profile.n_images} images -> {args.out}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from pipeline.eval.candidates import candidate_config
    from pipeline.eval.sweep import sweep

    params = _params(args)
    if args.candidate not in params.candidates:
        raise ValueError(f"no candidate {args.candidate!r} in {args.params}")
    spec = params.candidates[args.candidate]
    config = candidate_config(args.candidate, spec, Path(args.params).parent)
    console.print(f"[dim]sweeping {args.candidate} over {len(params.benchmarks)} benchmarks[/dim]")
    result = sweep(params, args.candidate, config, Path(args.out))
    for name, bench in result["benchmarks"].items():
        out.print(f"{args.candidate} on {name}: {bench['score']['final']:.2f}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from pipeline.config import PipelineConfig
    from pipeline.eval.membership_fit import fit, training_pairs
    from pipeline.eval.sweep import RESULT

    params = _params(args)
    base = Path(args.sweep) / params.membership_base
    config = PipelineConfig.from_dict(json.loads((base / RESULT).read_text())["config"])
    features, labels = training_pairs(params, base, config)
    model = fit(features, labels, params.membership_threshold)
    _write(Path(args.out), model)
    out.print(
        f"scene membership from {model['n_pairs']} pairs ({model['n_same_scene']} same scene): "
        + (f"train AUC {model['train_auc']:.3f}" if model["weights"] else model["reason"])
    )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from pipeline.eval.evaluate import evaluate

    metrics = evaluate(
        _params(args), args.candidate, Path(args.sweep), Path(args.membership), Path(args.out)
    )
    for variant, values in metrics.items():
        out.print(f"{args.candidate} ({variant} membership): {values['score']:.2f}")
    return 0


def cmd_select(args: argparse.Namespace) -> int:
    from pipeline.eval.evaluate import select

    selected = select(_params(args), Path(args.evaluated))
    _write(Path(args.out), selected)
    best = selected["best"]
    out.print(f"best: {best['candidate']} ({best['membership']} membership) {best['score']:.2f}")
    return 0


def add_experiment(sub: argparse._SubParsersAction) -> None:
    """Add the ``experiment`` command (one sub-command per ``dvc.yaml`` stage) to ``sub``."""
    ex = sub.add_parser("experiment", help="stages of the benchmark pipeline (dvc.yaml)")
    stages = ex.add_subparsers(dest="stage", required=True)

    def stage(name: str, func: Any, help_: str) -> argparse.ArgumentParser:
        parser = stages.add_parser(name, help=help_)
        parser.add_argument("--params", default="params.yaml", help="the pipeline's parameters")
        parser.set_defaults(func=func)
        return parser

    stage("validate", cmd_validate, "check every labelled image and threshold").add_argument(
        "--out", required=True
    )
    stage("profile", cmd_profile, "drift reference profile of the benchmark photos").add_argument(
        "--out", required=True
    )
    sw = stage("sweep", cmd_sweep, "one candidate reconstructs every benchmark")
    sw.add_argument("candidate")
    sw.add_argument("--out", required=True)
    tr = stage("train", cmd_train, "fit the scene-membership model on a sweep's pairs")
    tr.add_argument("--sweep", required=True, help="folder of the sweep stages' outputs")
    tr.add_argument("--out", required=True)
    ev = stage("evaluate", cmd_evaluate, "a candidate's metrics, fixed and learned membership")
    ev.add_argument("candidate")
    ev.add_argument("--sweep", required=True, help="that candidate's sweep output")
    ev.add_argument("--membership", required=True, help="the train stage's model")
    ev.add_argument("--out", required=True)
    se = stage("select", cmd_select, "the best of the current candidates")
    se.add_argument("--evaluated", required=True, help="folder of the evaluate stages' outputs")
    se.add_argument("--out", required=True)
