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
* **Noise level.** Networks that take a noise-level map (``takes_noise_level``: FFDNet, DRUNet) get it as one
  more input channel (:class:`denoise.models.noise_map.LevelInput`), decided once for the whole image by
  ``noise_level``: ``auto`` (the data's known level where given, else estimated), ``known``, ``estimate`` or a
  number on the 0-255 scale; tiles and the ensemble then cut and turn it with the image.
* **Precision.** ``precision="fp32"`` (the default) runs the network in IEEE float32 whatever autocast or TF32
  setting surrounds the call, so an evaluation gives the same output on any device and after any training
  precision; ``"bf16"``/``"fp16"`` trade that for speed (:mod:`denoise.precision`).

Memory is bounded by one tile's activations plus the image and two full-size accumulators.

* **Never out of memory.** A whole-image (or tiled) run that raises ``torch.OutOfMemoryError`` is retried in
  tiles, halving the tile (from the largest power of two below the image's longer side) until it fits, with a
  warning that says what it did; tiles are cut where the image is (host memory for a photo), and only each
  tile moves to the network's device. On the CPU, where running out of memory kills the process instead of
  raising, ``memory_budget_mb`` picks the tile before running: the activation bytes per pixel are measured once
  per network on a small probe (every operation's output bytes added up: an upper bound of the peak) and the
  largest power-of-two tile whose estimate fits the budget is used.
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Callable

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from denoise.data.transforms import dihedral, inverse_dihedral
from denoise.models.noise_map import LevelInput, estimate_noise_level, noise_level_map
from denoise.models.padding import pad_to_multiple
from denoise.models.tlc import convert_to_local
from denoise.precision import evaluation_precision

#: ``progress(advance, total)``: called after each tile with the number of tiles done and the total
Progress = Callable[[int, int], None]

log = logging.getLogger(__name__)

#: the smallest tile an out-of-memory retry or a memory budget goes down to
MIN_TILE = 64


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
        return _whole(net, x, progress)
    multiple = size_multiple(net)
    padded, (height, width) = pad_to_multiple(x, multiple)
    full_h, full_w = padded.shape[-2:]
    tiles = tile_grid(full_h, full_w, tile, overlap, multiple)
    device = _device_of(net, x.device)
    blend_on = accumulator_device(padded, device)
    if padded.device.type == "cpu" and device.type == "cuda":
        padded = padded.pin_memory()  # tiles copy without blocking the host
    out: torch.Tensor | None = None
    weight_sum = torch.zeros(1, 1, full_h, full_w, device=blend_on)
    step = max(1, int(tile_batch))
    for first in range(0, len(tiles), step):
        group = tiles[first : first + step]
        patches = torch.cat([padded[..., t : t + h, left : left + w] for t, left, h, w in group])
        results = net(patches.to(device, non_blocking=True)).to(blend_on, torch.float32).split(x.shape[0])
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


def apply_tlc(net: nn.Module, train_size: int | None, channels: int | None = None) -> int:
    """``inference.tlc=true``: make the network's global pooling/attention local (TLC, :mod:`denoise.models.tlc`)
    for windows of 1.5 x the training crop ``train_size``; logs how many operations changed (0: nothing global)."""
    if not train_size:
        raise ValueError(
            "inference.tlc=true needs inference.tlc_size, the side of the training crops (train.yaml and "
            "evaluate.yaml set it to ${data.patch_size})"
        )
    changed = convert_to_local(net, int(train_size), channels=channels)
    log.info("TLC: %d global operations of %s made local (training crops of %d)", changed, type(net).__name__,
             int(train_size))  # fmt: skip
    return changed


def sigma_value(setting: object) -> float | None:
    """``setting`` as a noise sigma on the 0-255 scale: a number >= 0, or None when it is not one (a word such as
    ``estimate``, or a negative number), for the caller to name what it expected."""
    try:
        value = float(setting)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if value >= 0 else None


def takes_noise_level(net: nn.Module) -> bool:
    return bool(getattr(net, "takes_noise_level", False))


def noise_level_for(
    x: torch.Tensor, noise_level: str | float = "auto", known: torch.Tensor | None = None
) -> torch.Tensor:
    """The ``B x 1 x H x W`` level map ([0, 1] scale) a noise-level network gets for ``x`` (see the module
    docstring); ``known`` is the data's own level (synthetic noise), a map or one number per image."""
    if isinstance(noise_level, int | float) and not isinstance(noise_level, bool):
        return noise_level_map(float(noise_level) / 255.0, x)
    if noise_level not in ("auto", "known", "estimate"):
        raise ValueError(f"inference.noise_level={noise_level!r}: expected auto, known, estimate or a number (0-255)")
    if known is not None and noise_level in ("auto", "known"):
        return noise_level_map(known, x)
    if noise_level == "known":
        raise ValueError(
            "inference.noise_level=known: this data has no known noise level (real noise, or noisy images alone); "
            "use inference.noise_level=estimate or a number on the 0-255 scale"
        )
    return noise_level_map(estimate_noise_level(x), x)


def denoise_image(
    net: nn.Module,
    x: torch.Tensor,
    tile: int = 0,
    overlap: int = 32,
    ensemble: bool = False,
    progress: Progress | None = None,
    precision: str = "fp32",
    noise_level: str | float = "auto",
    known_level: torch.Tensor | None = None,
    memory_budget_mb: float | None = None,
    tile_batch: int = 1,
) -> torch.Tensor:
    """The network's output for a ``B x C x H x W`` image of any size: padded, tiled above ``tile`` pixels
    a side (``0``: the whole image at once), and averaged over the 8 flips/rotations with ``ensemble``;
    computed in ``precision`` (fp32: IEEE float32, whatever autocast surrounds the call); a noise-level network
    given its level by ``noise_level`` (and the data's ``known_level``); tiles ``tile_batch`` at a time; tiled
    when it runs out of memory or would exceed ``memory_budget_mb`` (see the module docstring). Returns float32.

    Tiles and the ensemble run without autograd; a plain whole-image call keeps it (for a loss).
    """
    if takes_noise_level(net):
        x = torch.cat([x, noise_level_for(x, noise_level, known_level).to(x.dtype)], dim=1)
        net = LevelInput(net)
    with evaluation_precision(precision, _device_of(net, x.device).type):
        if precision == "fp32":  # float32, or the weights' own type when they are not (trainer.precision=bf16-true)
            x = x.to(_dtype_of(net))
        if memory_budget_mb is not None:
            tile = budget_tile(net, x, tile, overlap, memory_budget_mb)
        while True:
            try:
                return _denoise(net, x, tile, overlap, ensemble, progress, tile_batch).float()
            except torch.OutOfMemoryError as err:
                tiled = 0 < tile < max(x.shape[-2:])
                if tiled and tile_batch > 1:  # fewer tiles a forward before smaller tiles
                    log.warning("Out of memory with %d tiles a forward; retrying with %d", tile_batch, tile_batch // 2)
                    tile_batch //= 2
                    continue
                smaller = next_tile(x, tile, overlap, size_multiple(net))
                where = f"in {tile}x{tile} tiles" if tiled else "on the whole image"
                if smaller is None:
                    raise torch.OutOfMemoryError(
                        f"out of memory {where} ({x.shape[-2]}x{x.shape[-1]}), and tiles smaller than {MIN_TILE} "
                        f"pixels (with overlap {overlap}) are not tried: free memory or use a smaller network"
                    ) from err
                log.warning(
                    "Out of memory %s (%dx%d); retrying in %dx%d tiles overlapping by %d pixels",
                    where, x.shape[-2], x.shape[-1], smaller, smaller, overlap,
                )  # fmt: skip
                del err
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                tile = smaller


def _denoise(
    net: nn.Module,
    x: torch.Tensor,
    tile: int,
    overlap: int,
    ensemble: bool,
    progress: Progress | None,
    tile_batch: int = 1,
) -> torch.Tensor:
    if not ensemble:
        if tile <= 0 or max(x.shape[-2:]) <= tile:
            return _whole(net, x, progress)  # outside run_tiled's no_grad: a loss can flow through
        return run_tiled(net, x, tile, overlap, progress, tile_batch)
    total = 0.0

    def report(done: int, count: int, offset: int = 0) -> None:
        if progress is not None:
            progress(offset * count + done, 8 * count)

    for index in range(8):
        result = run_tiled(
            net, dihedral(x, index), tile, overlap, lambda d, c, i=index: report(d, c, i), tile_batch=tile_batch
        )
        total = total + inverse_dihedral(result.float(), index)
    return total / 8


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
        device = _device_of(net, torch.device("cpu"))
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
