"""Device choice is guarded: CUDA only when torch sees it."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from pipeline.learned.device import select_device  # noqa: E402
from pipeline.learned.lightglue import batch_size_for  # noqa: E402


def test_device_selection_is_guarded() -> None:
    assert select_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert select_device("auto").type == "cpu"
        with pytest.raises(RuntimeError, match="no CUDA device"):
            select_device("cuda")
    assert batch_size_for(torch.device("cpu"), 2048) == 1
    assert batch_size_for(torch.device("cuda"), 2048) == 64
    assert batch_size_for(torch.device("cuda"), 8192) == 4
