"""Overlapping tiles, blended: a network's output computed tile by tile with a bounded memory (see
:mod:`denoise.inference`)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import nn

from denoise.inference.devices import device_of
from denoise.models.padding import pad_to_multiple

#: ``progress(advance, total)``: called after each tile with the number of tiles done and the total
Progress = Callable[[int, int], None]


def size_multiple(net: nn.Module) -> int:
    """The height/width multiple a network needs (``size_multiple`` attribute; 1 when it has none)."""
    return int(getattr(net, "size_multiple", 1))


class ModelOutputError(ValueError):
    """A network returned something other than an image of its input's size and channels."""


def _dims(shape: tuple[int, ...]) -> str:
    return " x ".join(str(size) for size in shape)


def checked_output(out: object, x: torch.Tensor, net: nn.Module) -> torch.Tensor:
    """``out`` when it is ``net``'s answer to ``x`` as a denoiser gives one: a tensor of ``x``'s batch, channels
    (less a noise-level input's) and size; else an error, so that an ONNX graph that drops the colour or halves
    the size never becomes an output file."""
    channels = x.shape[1] - int(getattr(net, "extra_input_channels", 0))
    expected = (x.shape[0], channels, *x.shape[2:])
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != expected:
        got = _dims(tuple(out.shape)) if isinstance(out, torch.Tensor) else f"a {type(out).__name__}"
        raise ModelOutputError(
            f"the network returned {got} for an input of {_dims(expected)} (batch x channels x height x width): a "
            "denoiser must return its input's channels and size"
        )
    return out


def run_whole(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``net(x)`` on the network's device, back on ``x``'s: the network pads for its own size multiple."""
    return checked_output(net(x.to(device_of(net, x.device))), x, net).to(x.device)


def tile_starts(length: int, tile: int, stride: int) -> list[int]:
    """Start offsets of tiles of ``tile`` pixels every ``stride`` pixels, the last one flush with the end."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    return [*starts, length - tile]


def blend_weights(length: int, start: int, total: int, overlap: int) -> torch.Tensor:
    """One axis of a tile's weight map: 0 in the outer margin of each inner edge, a linear ramp, then 1.

    Edges on the image border are not inner edges and keep weight 1 up to the border.
    """
    ramp = max(overlap // 4, 1)
    margin = (overlap - ramp) // 2
    distance = torch.arange(length, dtype=torch.float32)
    weight = torch.ones(length)
    if start > 0:  # an inner edge at the start of the tile
        weight = torch.minimum(weight, ((distance - margin + 1) / (ramp + 1)).clamp(0, 1))
    if start + length < total:  # an inner edge at the end
        weight = torch.minimum(weight, ((length - 1 - distance - margin + 1) / (ramp + 1)).clamp(0, 1))
    return weight


def tile_grid(height: int, width: int, tile: int, overlap: int, multiple: int = 1) -> list[tuple[int, int, int, int]]:
    """``(top, left, tile_height, tile_width)`` of every tile of a ``height x width`` image (already padded
    to ``multiple``), with tile size and stride rounded down to the multiple."""
    if overlap < 0:
        raise ValueError(f"overlap={overlap}: expected >= 0")
    size = max(tile // multiple * multiple, multiple)
    if size - overlap < multiple:
        raise ValueError(
            f"tile={tile} is too small for overlap={overlap}: expected tile >= overlap + {multiple} "
            f"(the network's size multiple)"
        )
    stride = (size - overlap) // multiple * multiple
    tiles = []
    for top in tile_starts(height, size, stride):
        for left in tile_starts(width, size, stride):
            tiles.append((top, left, min(size, height), min(size, width)))
    return tiles


def whole(net: nn.Module, x: torch.Tensor, progress: Progress | None) -> torch.Tensor:
    out = run_whole(net, x)
    if progress is not None:
        progress(1, 1)
    return out


def accumulator_device(x: torch.Tensor, device: torch.device, channels_out: int | None = None) -> torch.device:
    """Where tiles are blended: on the network's device when the output and weight accumulators take at most a
    quarter of its free memory (every step of the tile loop then stays on the GPU: no copy back and no host
    sync per tile), else where the image is (a photo larger than the GPU's memory stays in host memory)."""
    if device.type != "cuda" or x.device == device:
        return device if x.device == device else x.device
    free, _ = torch.cuda.mem_get_info(device)
    batch, channels, height, width = x.shape
    needed = 4 * batch * height * width * ((channels_out or channels) + 1)  # float32 output and weight sum
    return device if needed <= free // 4 else x.device


@functools.lru_cache(maxsize=64)
def _weight_map(
    tile_h: int, tile_w: int, edges: tuple[bool, bool, bool, bool], overlap: int, device: torch.device
) -> torch.Tensor:
    """A tile's blend weights (``tile_h x tile_w``), by which of its edges are inner ones (top, bottom, left,
    right), built once per shape and device."""
    top, bottom, left, right = edges
    rows = blend_weights(tile_h, int(top), int(top) + tile_h + int(bottom), overlap)
    cols = blend_weights(tile_w, int(left), int(left) + tile_w + int(right), overlap)
    return torch.outer(rows, cols).to(device)


@torch.no_grad()
def run_tiled(
    net: nn.Module,
    x: torch.Tensor,
    tile: int,
    overlap: int = 32,
    progress: Progress | None = None,
    tile_batch: int = 1,
) -> torch.Tensor:
    """``net(x)`` computed tile by tile and blended (see the module docstring); ``tile <= 0``: whole image.

    Tiles run on the network's device, ``tile_batch`` of them a forward (every tile has the same size, so they
    stack: a GPU runs a batch of tiles about as fast as one). The blending happens on the network's device when
    its accumulators fit there (:func:`accumulator_device`), so a GPU never waits for the host between tiles;
    else where ``x`` is, so a photo larger than the GPU's memory can stay in host memory. The image itself stays
    where it is and only each group of tiles moves.
    """
    if tile <= 0 or max(x.shape[-2:]) <= tile:
        return whole(net, x, progress)
    multiple = size_multiple(net)
    padded, (height, width) = pad_to_multiple(x, multiple)
    full_h, full_w = padded.shape[-2:]
    tiles = tile_grid(full_h, full_w, tile, overlap, multiple)
    device = device_of(net, x.device)
    blend_on = accumulator_device(padded, device)
    if padded.device.type == "cpu" and device.type == "cuda":
        padded = padded.pin_memory()  # tiles copy without blocking the host
    out: torch.Tensor | None = None
    weight_sum = torch.zeros(1, 1, full_h, full_w, device=blend_on)
    step = max(1, int(tile_batch))
    for first in range(0, len(tiles), step):
        group = tiles[first : first + step]
        patches = torch.cat([padded[..., t : t + h, left : left + w] for t, left, h, w in group])
        outputs = checked_output(net(patches.to(device, non_blocking=True)), patches, net)
        results = outputs.to(blend_on, torch.float32).split(x.shape[0])
        for result, (top, left, tile_h, tile_w) in zip(results, group, strict=True):
            if out is None:
                out = torch.zeros(x.shape[0], result.shape[1], full_h, full_w, device=blend_on)
            edges = (top > 0, top + tile_h < full_h, left > 0, left + tile_w < full_w)
            weight = _weight_map(tile_h, tile_w, edges, overlap, blend_on)
            out[..., top : top + tile_h, left : left + tile_w].addcmul_(result, weight)
            weight_sum[..., top : top + tile_h, left : left + tile_w] += weight
        if progress is not None:
            progress(first + len(group), len(tiles))
    assert out is not None
    blended = (out / weight_sum)[..., :height, :width]
    return blended if blend_on == x.device else blended.to(x.device)  # one copy back, of the finished image
