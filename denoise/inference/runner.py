"""Running a network on a whole image: the noise-level input, the evaluation precision, tiles, the x8
ensemble, the out-of-memory retry and the memory budget, and TLC; all as one :class:`Inference` value."""

from __future__ import annotations

import logging

import torch
from torch import nn

from denoise.data.transforms import dihedral, inverse_dihedral
from denoise.inference.devices import device_of, dtype_of
from denoise.inference.memory import MIN_TILE, budget_tile, next_tile
from denoise.inference.noise_level import noise_level_for, takes_noise_level
from denoise.inference.precision import evaluation_precision
from denoise.inference.settings import Inference
from denoise.inference.tiling import Progress, run_tiled, size_multiple, whole
from denoise.models.noise_map import LevelInput
from denoise.models.tlc import convert_to_local

log = logging.getLogger(__name__)


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


def prepare_network(net: nn.Module, settings: Inference, channels: int | None = None) -> nn.Module:
    """The one place a network is readied for :func:`denoise_image` under ``settings``: TLC when asked for."""
    if settings.tlc:
        apply_tlc(net, settings.tlc_size, channels)
    return net


def denoise_image(
    net: nn.Module,
    x: torch.Tensor,
    settings: Inference | None = None,
    *,
    progress: Progress | None = None,
    known_level: torch.Tensor | None = None,
    **overrides: object,
) -> torch.Tensor:
    """The network's output for a ``B x C x H x W`` image of any size: padded, tiled above ``tile`` pixels
    a side (``0``: the whole image at once), and averaged over the 8 flips/rotations with ``ensemble``;
    computed in ``precision`` (fp32: IEEE float32, whatever autocast surrounds the call); a noise-level network
    given its level by ``noise_level`` (and the data's ``known_level``); tiles ``tile_batch`` at a time; tiled
    when it runs out of memory or would exceed ``memory_budget_mb`` (see the module docstring). Returns float32.

    Tiles and the ensemble run without autograd; a plain whole-image call keeps it (for a loss).
    """
    options = Inference.of(settings, **overrides)
    tile, overlap, tile_batch = options.tile, options.overlap, options.tile_batch
    precision = options.precision
    if takes_noise_level(net):
        x = torch.cat([x, noise_level_for(x, options.noise_level, known_level).to(x.dtype)], dim=1)
        net = LevelInput(net)
    with evaluation_precision(precision, device_of(net, x.device).type):
        if precision == "fp32":  # float32, or the weights' own type when they are not (trainer.precision=bf16-true)
            x = x.to(dtype_of(net))
        if options.memory_budget_mb is not None:
            tile = budget_tile(net, x, tile, overlap, options.memory_budget_mb)
        while True:
            try:
                return _denoise(net, x, tile, overlap, options.ensemble, progress, tile_batch).float()
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
            return whole(net, x, progress)  # outside run_tiled's no_grad: a loss can flow through
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
