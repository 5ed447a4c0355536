"""Weights from a copy (a registered version's own): the same features and matches as the
installed files, and a clear error where a copy is missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pipeline import learned  # noqa: E402
from pipeline.errors import ReconstructionError  # noqa: E402
from pipeline.learned.extract import extract_image  # noqa: E402
from pipeline.learned.lightglue import load_matcher  # noqa: E402


@pytest.mark.parametrize("name", list(learned.MODELS))
def test_copied_weights_give_what_the_installed_ones_give(
    name: str, views: list[Path], tmp_path: Path, offline: None
) -> None:
    files = learned.load_model(name).weight_files()
    assert len(files) == 2 and all(path.is_file() for path in files)
    for path in files:
        shutil.copy2(path, tmp_path / path.name)
    cpu = torch.device("cpu")
    installed = extract_image(views[0], name, 320, 256, cpu)
    copied = extract_image(views[0], name, 320, 256, cpu, str(tmp_path))
    # Equal up to float rounding: the weights are the same bytes (the matchers compare exactly).
    assert np.allclose(installed.keypoints, copied.keypoints, atol=1e-3)
    assert np.allclose(installed.descriptors, copied.descriptors, atol=1e-2)
    ours = load_matcher(name, "cpu", True, str(tmp_path)).state_dict()
    theirs = load_matcher(name, "cpu", True).state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[key], theirs[key]) for key in ours)


def test_a_missing_copy_is_a_clear_error(views: list[Path], tmp_path: Path) -> None:
    with pytest.raises(ReconstructionError, match=r"aliked-n16\.pth is not in"):
        extract_image(views[0], "aliked", 320, 256, torch.device("cpu"), str(tmp_path))
