"""Running a network on whole images of any size: padding, overlapping tiles, x8 self-ensemble.

* **Padding.** Networks that down-sample need a height/width multiple (``size_multiple``); each pads its input
  and crops its output itself (:mod:`denoise.models.padding`), so a whole image goes in as it is.
* **Tiles.** Above ``tile`` pixels a side, the image (padded by the same rule, so that every tile, the last ones
  too, lies on the network's grid) is cut into ``tile x tile`` tiles that overlap
  by at least ``overlap`` pixels, at positions that are multiples of the network's ``size_multiple`` (so a
  wavelet or strided network sees every tile on the same grid as the whole image). Each tile's output is
  weighted by a map that is 0 in the outer ``margin`` of every inner tile edge and ramps linearly to 1 over
  the middle quarter of the overlap; the blended image is the weighted sum over the sum of weights (KAIR's
  and SwinIR's overlapping tiles, with a ramp instead of a plain average so seams are invisible). A pixel
  therefore only takes values from tiles where it lies at least ``margin = (overlap - overlap // 4) // 2``
  pixels inside: for a network whose receptive-field radius is at most ``margin`` the tiled output *equals*
  the whole-image output. Networks with global context (channel attention over the whole image: PRIDNet,
  NAFNet) see each tile's statistics instead, which is the usual price of bounded memory.
* **Self-ensemble.** ``ensemble=True`` averages the outputs over the 8 flips/rotations (Lim et al. 2017's
  x8 geometric self-ensemble), each inverted back.
* **Precision.** ``precision="fp32"`` (the default) runs the network in IEEE float32 whatever autocast or TF32
  setting surrounds the call, so an evaluation gives the same output on any device and after any training
  precision; ``"bf16"``/``"fp16"`` trade that for speed (:mod:`denoise.precision`).

Memory is bounded by one tile's activations plus the image and two full-size accumulators.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from denoise.data.transforms import dihedral, inverse_dihedral
from denoise.models.padding import pad_to_multiple
from denoise.precision import evaluation_precision

#: ``progress(advance, total)``: called after each tile with the number of tiles done and the total
Progress = Callable[[int, int], None]


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when available, else CPU; anything else as torch spells it (cpu, cuda, cuda:1)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU and its thread count: what every benchmark's JSON says it measured on."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU): for timings."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def size_multiple(net: nn.Module) -> int:
    """The height/width multiple a network needs (``size_multiple`` attribute; 1 when it has none)."""
    return int(getattr(net, "size_multiple", 1))


def _device_of(net: nn.Module, default: torch.device) -> torch.device:
    parameter = next(iter(net.parameters()), None)
    return parameter.device if parameter is not None else default


def _dtype_of(net: nn.Module) -> torch.dtype:
    parameter = next(iter(net.parameters()), None)
    return parameter.dtype if parameter is not None and parameter.is_floating_point() else torch.float32


def run_whole(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``net(x)`` on the network's device, back on ``x``'s: the network pads for its own size multiple."""
    return net(x.to(_device_of(net, x.device))).to(x.device)


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


def _whole(net: nn.Module, x: torch.Tensor, progress: Progress | None) -> torch.Tensor:
    out = run_whole(net, x)
    if progress is not None:
        progress(1, 1)
    return out


@torch.no_grad()
def run_tiled(
    net: nn.Module,
    x: torch.Tensor,
    tile: int,
    overlap: int = 32,
    progress: Progress | None = None,
) -> torch.Tensor:
    """``net(x)`` computed tile by tile and blended (see the module docstring); ``tile <= 0``: whole image.

    Tiles run on the network's device; the accumulators stay on ``x``'s device, so a photo larger than
    the GPU's memory can stay in host memory.
    """
    if tile <= 0 or max(x.shape[-2:]) <= tile:
        return _whole(net, x, progress)
    multiple = size_multiple(net)
    padded, (height, width) = pad_to_multiple(x, multiple)
    full_h, full_w = padded.shape[-2:]
    tiles = tile_grid(full_h, full_w, tile, overlap, multiple)
    device = _device_of(net, x.device)
    out: torch.Tensor | None = None
    weight_sum = torch.zeros(1, 1, full_h, full_w, device=x.device)
    for done, (top, left, tile_h, tile_w) in enumerate(tiles, start=1):
        patch = padded[..., top : top + tile_h, left : left + tile_w].to(device)
        result = net(patch).to(x.device, torch.float32)
        if out is None:
            out = torch.zeros(x.shape[0], result.shape[1], full_h, full_w, device=x.device)
        weight = torch.outer(
            blend_weights(tile_h, top, full_h, overlap), blend_weights(tile_w, left, full_w, overlap)
        ).to(x.device)
        out[..., top : top + tile_h, left : left + tile_w] += result * weight
        weight_sum[..., top : top + tile_h, left : left + tile_w] += weight
        if progress is not None:
            progress(done, len(tiles))
    assert out is not None
    return (out / weight_sum)[..., :height, :width]


def denoise_image(
    net: nn.Module,
    x: torch.Tensor,
    tile: int = 0,
    overlap: int = 32,
    ensemble: bool = False,
    progress: Progress | None = None,
    precision: str = "fp32",
) -> torch.Tensor:
    """The network's output for a ``B x C x H x W`` image of any size: padded, tiled above ``tile`` pixels
    a side (``0``: the whole image at once), and averaged over the 8 flips/rotations with ``ensemble``;
    computed in ``precision`` (fp32: IEEE float32, whatever autocast surrounds the call). Returns float32.

    Tiles and the ensemble run without autograd; a plain whole-image call keeps it (for a loss).
    """
    with evaluation_precision(precision, _device_of(net, x.device).type):
        if precision == "fp32":  # float32, or the weights' own type when they are not (trainer.precision=bf16-true)
            x = x.to(_dtype_of(net))
        return _denoise(net, x, tile, overlap, ensemble, progress).float()


def _denoise(
    net: nn.Module, x: torch.Tensor, tile: int, overlap: int, ensemble: bool, progress: Progress | None
) -> torch.Tensor:
    if not ensemble:
        if tile <= 0 or max(x.shape[-2:]) <= tile:
            return _whole(net, x, progress)  # outside run_tiled's no_grad: a loss can flow through
        return run_tiled(net, x, tile, overlap, progress)
    total = 0.0

    def report(done: int, count: int, offset: int = 0) -> None:
        if progress is not None:
            progress(offset * count + done, 8 * count)

    for index in range(8):
        result = run_tiled(net, dihedral(x, index), tile, overlap, lambda d, c, i=index: report(d, c, i))
        total = total + inverse_dihedral(result.float(), index)
    return total / 8
