"""Synthetic scenes with exact ground truth, so engine tests need no real photographs.

A scene is a handful of textured rectangles (a ground plane, back/side walls and boxes,
some of them rotated) rendered by vectorised numpy ray casting from known pinhole cameras
placed on an arc around the scene centre. The geometry is deliberately non-planar, so
structure from motion is well-posed, and every face carries a high-frequency, non-repeating
procedural texture attached to the surface (not to the screen), so the same surface point looks
the same from every view and SIFT finds many distinctive, matchable keypoints.

Poses follow COLMAP conventions: world-to-camera ``x = K (R X + t)``, the camera looks along
``+z`` with ``y`` pointing down, and pixel ``(i, j)`` covers ``[i, i+1) x [j, j+1)``, so its centre
is at ``(i + 0.5, j + 0.5)``. Ground truth is written in the Image Matching Challenge 2025 layout
(``train_labels.csv`` and ``train_thresholds.csv``).

:mod:`~pipeline.eval.synthetic.geometry` holds the faces and their textures,
:mod:`~pipeline.eval.synthetic.render` the cameras and the ray caster, and
:mod:`~pipeline.eval.synthetic.collection` whole scenes, outlier photos and ground truth.
"""

from pipeline.eval.synthetic.collection import (
    SyntheticScene,
    make_collection,
    make_noise_image,
    render_scene,
    scene_thresholds,
    write_imc_ground_truth,
)
from pipeline.eval.synthetic.geometry import Quad, build_geometry
from pipeline.eval.synthetic.render import SyntheticView, depth_map, render_view

__all__ = [
    "Quad",
    "SyntheticScene",
    "SyntheticView",
    "build_geometry",
    "depth_map",
    "make_collection",
    "make_noise_image",
    "render_scene",
    "render_view",
    "scene_thresholds",
    "write_imc_ground_truth",
]
