"""``scene3d drift reference``: the reference profile is built in the platform's home."""

from __future__ import annotations

import json

from scene3d.cli import main


def test_drift_reference_is_built_in_the_home(tmp_path, monkeypatch, capsys) -> None:
    import numpy as np
    from PIL import Image

    monkeypatch.setenv("SCENE3D_HOME", str(tmp_path / "home"))
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        pixels = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(photos / f"p{i}.png")
    assert main(["drift", "reference", str(photos), "--name", "ref1"]) == 0
    profile = json.loads((tmp_path / "home" / "drift" / "reference.json").read_text())
    assert profile["name"] == "ref1" and profile["n_images"] == 6
    assert main(["drift", "reference", str(tmp_path / "empty_nothing")]) == 2
