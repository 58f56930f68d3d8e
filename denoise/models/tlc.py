"""Test-time local converter (TLC; Chu, Chen, Chen, Lu, "Improving Image Restoration by Revisiting Global
Information Aggregation", ECCV 2022, arXiv 2112.04491).

A network trained on ``p x p`` crops whose global pooling (NAFNet's simplified channel attention, PRIDNet's
channel attention and kernel selection) or global attention (Restormer's transposed attention) sees the whole
input computes, on a whole test image, statistics of a region far larger than any it was trained on. TLC makes
those operations local at test time: each pixel gets the statistics of the ``base x base`` window around it,
with ``base = 1.5 p`` by default (the authors' choice), scaled to each feature map's resolution. Where a
feature map is no larger than its window, the local operation *is* the global one, so training (on crops) and
any input up to the base size are unchanged.

* pooling: a box filter over the window from an integral image, the border replicated (the authors' layer);
* transposed attention: computed in overlapping windows that cover the map, averaged where they overlap (the
  authors' Restormer converter, for any batch size).

:func:`convert_to_local` rewrites a network in place: it replaces every ``nn.AdaptiveAvgPool2d(1)`` by
:class:`LocalAvgPool2d` and gives every module with a ``local_window`` attribute (Restormer's attention) its
window, sizing each from the feature map it sees on a ``p x p`` probe.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class LocalAvgPool2d(nn.Module):
    """The mean over the ``kernel`` window around each pixel (a global mean where the map is no larger)."""

    def __init__(self, kernel: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.kernel = kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if self.kernel is None or (self.kernel[0] >= height and self.kernel[1] >= width):
            return F.adaptive_avg_pool2d(x, 1)
        k1, k2 = min(height, self.kernel[0]), min(width, self.kernel[1])
        sums = F.pad(x.float().cumsum(dim=-1).cumsum(dim=-2), (1, 0, 1, 0))
        windows = sums[..., k1:, k2:] - sums[..., :-k1, k2:] - sums[..., k1:, :-k2] + sums[..., :-k1, :-k2]
        out = (windows / (k1 * k2)).to(x.dtype)
        pad_h, pad_w = height - out.shape[-2], width - out.shape[-1]
        return F.pad(out, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), mode="replicate")

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}"


def window_starts(length: int, window: int) -> list[int]:
    """Starts of the fewest ``window``-long windows that cover ``length``, evenly spread, the last flush."""
    window = min(length, window)
    count = (length - 1) // window + 1
    if count == 1:
        return [0]
    step = math.ceil((length - window) / (count - 1) - 1e-8)
    starts = list(range(0, length - window, step))[: count - 1]
    return [*starts, length - window]


def local_transposed_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    heads: int,
    temperature: torch.Tensor,
    window: tuple[int, int],
) -> torch.Tensor:
    """Restormer's channel attention in overlapping ``window`` windows of the ``B x C x H x W`` maps, averaged
    where windows overlap."""
    batch, channels, height, width = q.shape
    k1, k2 = min(height, window[0]), min(width, window[1])
    boxes = [(top, left) for top in window_starts(height, k1) for left in window_starts(width, k2)]

    def windows(t: torch.Tensor) -> torch.Tensor:  # (windows * B) x heads x C/heads x (k1 * k2)
        parts = torch.cat([t[..., top : top + k1, left : left + k2] for top, left in boxes], dim=0)
        return parts.reshape(len(boxes) * batch, heads, channels // heads, k1 * k2)

    qw, kw, vw = windows(q), windows(k), windows(v)
    qw, kw = F.normalize(qw, dim=-1), F.normalize(kw, dim=-1)
    attended = (((qw @ kw.transpose(-2, -1)) * temperature).softmax(dim=-1) @ vw).reshape(-1, channels, k1, k2)
    out = torch.zeros_like(q)
    count = torch.zeros(1, 1, height, width, device=q.device, dtype=q.dtype)
    for index, (top, left) in enumerate(boxes):
        out[..., top : top + k1, left : left + k2] += attended[index * batch : (index + 1) * batch]
        count[..., top : top + k1, left : left + k2] += 1
    return out / count


@torch.no_grad()
def convert_to_local(net: nn.Module, train_size: int, base_ratio: float = 1.5, channels: int | None = None) -> int:
    """Make ``net``'s global pooling and global attention local (in place); returns how many operations changed
    (0 for networks without any, which stay as they are). ``train_size``: the training crop's side."""
    for parent in list(net.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.AdaptiveAvgPool2d) and child.output_size in (1, (1, 1)):
                setattr(parent, name, LocalAvgPool2d())
    local = [m for m in net.modules() if isinstance(m, LocalAvgPool2d) or hasattr(m, "local_window")]
    if not local:
        return 0
    base = int(train_size * base_ratio)
    sizes: dict[nn.Module, tuple[int, int]] = {}

    def record(module: nn.Module, args: tuple) -> None:
        sizes.setdefault(module, tuple(args[0].shape[-2:]))

    hooks = [module.register_forward_pre_hook(record) for module in local]
    for module in local:  # the probe runs the global operations, which are exact at the training size
        if isinstance(module, LocalAvgPool2d):
            module.kernel = None
        else:
            module.local_window = None
    first = next(m for m in net.modules() if isinstance(m, nn.Conv2d))
    parameter = next(net.parameters())
    in_channels = channels or first.in_channels
    probe = torch.rand(1, in_channels, train_size, train_size, device=parameter.device, dtype=parameter.dtype)
    was_training = net.training
    net.eval()
    try:
        if getattr(net, "takes_noise_level", False):
            net(probe, 0.1)
        else:
            net(probe)
    finally:
        net.train(was_training)
        for hook in hooks:
            hook.remove()
    for module, (height, width) in sizes.items():
        window = (max(1, height * base // train_size), max(1, width * base // train_size))
        if isinstance(module, LocalAvgPool2d):
            module.kernel = window
        else:
            module.local_window = window
    return len(sizes)
