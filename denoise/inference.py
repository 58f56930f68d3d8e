"""Running a network on whole images of any size."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def size_multiple(net: nn.Module) -> int:
    """The height/width multiple a network needs (``size_multiple`` attribute; 1 when it has none)."""
    return int(getattr(net, "size_multiple", 1))


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad the bottom/right of ``x`` up to a multiple of ``multiple``; returns the original size."""
    height, width = x.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if pad_h or pad_w:
        mode = "reflect" if pad_h < height and pad_w < width else "replicate"
        x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
    return x, (height, width)


def run_padded(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``net(x)`` for any input size: pad to the network's multiple, run, crop back."""
    padded, (height, width) = pad_to_multiple(x, size_multiple(net))
    return net(padded)[..., :height, :width]
