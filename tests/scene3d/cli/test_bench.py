"""``scene3d bench*``: choice lists come from the registries, not from literals."""

from __future__ import annotations

import argparse

from pipeline import learned
from pipeline.eval.baseline import BASELINES
from scene3d.cli import build_parser, main


def _choices(parser: argparse.ArgumentParser, command: str, option: str) -> list[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    action = next(a for a in sub.choices[command]._actions if option in a.option_strings)
    return list(action.choices)


def test_choices_are_the_registered_names() -> None:
    parser = build_parser()
    assert _choices(parser, "bench", "--baseline") == sorted(BASELINES) == ["colmap"]
    assert _choices(parser, "bench-throughput", "--extractor") == list(learned.MODELS)


def test_throughput_needs_two_images(tmp_path, capsys) -> None:
    assert main(["bench-throughput", str(tmp_path)]) == 2
    assert "need at least 2 images" in capsys.readouterr().err
