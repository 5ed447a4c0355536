"""Where learned models run: CUDA when it is present (half precision, pairs matched in padded
batches), the CPU otherwise (one pair at a time with LightGlue's adaptive depth and width,
which is what is fastest there)."""

from __future__ import annotations

import torch


def select_device(preference: str = "auto") -> torch.device:
    """``auto`` picks CUDA when it is usable, else the CPU; ``cpu`` / ``cuda`` force one."""
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if preference == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but torch sees no CUDA device")
    return torch.device(preference)


def set_threads(num_threads: int) -> None:
    """Use ``num_threads`` CPU threads in torch (0 or less: torch's default)."""
    if num_threads > 0:
        torch.set_num_threads(num_threads)
