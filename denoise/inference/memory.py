"""Never out of memory: the next tile an out-of-memory retry tries, and on the CPU the tile a memory budget
allows, from the activation bytes per pixel measured once per network."""

from __future__ import annotations

import logging
import weakref

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from denoise.inference.devices import device_of
from denoise.inference.tiling import size_multiple

log = logging.getLogger(__name__)

#: the smallest tile an out-of-memory retry or a memory budget goes down to
MIN_TILE = 64


def next_tile(x: torch.Tensor, tile: int, overlap: int, multiple: int = 1) -> int | None:
    """The tile an out-of-memory retry tries next: the largest power of two below the image's longer side after
    a whole-image run, else half the tile; None below :data:`MIN_TILE` (or the overlap plus the network's size
    multiple)."""
    longest = max(x.shape[-2:])
    current = tile if 0 < tile < longest else longest
    smaller = 1 << (max(current - 1, 1).bit_length() - 1) if current == longest else current // 2
    smaller = smaller // multiple * multiple
    return smaller if smaller >= max(MIN_TILE, overlap + multiple) else None


class _OutputBytes(TorchDispatchMode):
    """Adds up the bytes of every operation's outputs (an upper bound of the peak memory of a forward)."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in out if isinstance(out, tuple | list) else (out,):
            if isinstance(tensor, torch.Tensor):
                self.total += tensor.numel() * tensor.element_size()
        return out


#: per network (weakly: a freed network's entry goes with it), per (channels, dtype)
_BYTES_PER_PIXEL: weakref.WeakKeyDictionary[nn.Module, dict[tuple[int, torch.dtype], float]] = (
    weakref.WeakKeyDictionary()
)


@torch.no_grad()
def bytes_per_pixel(net: nn.Module, channels: int, dtype: torch.dtype = torch.float32, probe: int = 64) -> float:
    """Activation bytes per input pixel of ``net`` (all its operations' outputs on a ``probe x probe`` input,
    measured once per network)."""
    measured = _BYTES_PER_PIXEL.setdefault(net, {})
    key = (channels, dtype)
    if key not in measured:
        device = device_of(net, torch.device("cpu"))
        x = torch.rand(1, channels, probe, probe, device=device, dtype=dtype)
        with _OutputBytes() as counter:
            net(x)
        measured[key] = counter.total / (probe * probe)
    return measured[key]


def budget_tile(net: nn.Module, x: torch.Tensor, tile: int, overlap: int, budget_mb: float) -> int:
    """The tile that keeps one forward within ``budget_mb`` megabytes (estimated by :func:`bytes_per_pixel`,
    per image of the batch): ``tile`` itself when it fits, else the largest power of two that does."""
    per_pixel = bytes_per_pixel(net, x.shape[1], x.dtype) * x.shape[0]
    height, width = x.shape[-2:]
    current = tile if 0 < tile < max(height, width) else 0

    def fits(size: int) -> bool:
        pixels = height * width if size == 0 else min(size, height) * min(size, width)
        return per_pixel * pixels <= budget_mb * 1e6

    if fits(current):
        return tile
    candidate: int | None = current
    while candidate is not None and not fits(candidate):
        candidate = next_tile(x, candidate, overlap, size_multiple(net))
    if candidate is None:
        raise ValueError(
            f"inference.memory_budget_mb={budget_mb:g}: even {MIN_TILE}x{MIN_TILE} tiles need about "
            f"{per_pixel * MIN_TILE**2 / 1e6:.0f} MB with this network; raise the budget"
        )
    log.warning(
        "A whole %dx%d image would need about %.0f MB, over inference.memory_budget_mb=%g; running %dx%d tiles",
        height, width, per_pixel * height * width / 1e6, budget_mb, candidate, candidate,
    )  # fmt: skip
    return candidate
