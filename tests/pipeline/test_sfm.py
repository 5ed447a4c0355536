"""Mapping: settings reach COLMAP, degenerate models are recognised."""

from __future__ import annotations

import pycolmap
import pytest

from pipeline.presets import load_preset
from pipeline.sfm import _incremental_options, has_bogus_camera


def test_mapping_settings_reach_colmap() -> None:
    plain = _incremental_options(load_preset("colmap").mapping, ["a.jpg"])
    assert plain.triangulation.ignore_two_view_tracks is True
    assert plain.mapper.abs_pose_min_num_inliers == 30
    default = _incremental_options(load_preset().mapping, ["a.jpg"])
    assert default.triangulation.ignore_two_view_tracks is False
    assert default.mapper.abs_pose_min_num_inliers == 15
    assert default.image_names == ["a.jpg"]


@pytest.mark.parametrize(("focal", "bogus"), [(62.0, True), (768.0, False), (3300.0, False)])
def test_models_with_implausible_cameras_are_recognised(focal: float, bogus: bool) -> None:
    rec = pycolmap.Reconstruction()
    camera = pycolmap.Camera.create_from_model_name(1, "SIMPLE_RADIAL", focal, 640, 480)
    camera.params[3] = 2.0  # long lenses refine to large coefficients that barely matter
    rec.add_camera(camera)
    assert has_bogus_camera(rec) is bogus
