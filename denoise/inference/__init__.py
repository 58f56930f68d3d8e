"""Running a network on whole images of any size: padding, overlapping tiles, x8 self-ensemble; a package by job
(``settings``: the one :class:`Inference` value; ``runner``: :func:`denoise_image`; ``tiling``; ``memory``;
``noise_level``; ``devices``).

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
  precision; ``"bf16"``/``"fp16"`` trade that for speed (:mod:`denoise.inference.precision`).

Memory is bounded by one tile's activations plus the image and two full-size accumulators.

* **Never out of memory.** A whole-image (or tiled) run that raises ``torch.OutOfMemoryError`` is retried in
  tiles, halving the tile (from the largest power of two below the image's longer side) until it fits, with a
  warning that says what it did; tiles are cut where the image is (host memory for a photo), and only each
  tile moves to the network's device. On the CPU, where running out of memory kills the process instead of
  raising, ``memory_budget_mb`` picks the tile before running: the activation bytes per pixel are measured once
  per network on a small probe (every operation's output bytes added up: an upper bound of the peak) and the
  largest power-of-two tile whose estimate fits the budget is used.
"""

from denoise.inference.devices import device_name, device_of, dtype_of, resolve_device, synchronize
from denoise.inference.memory import MIN_TILE, budget_tile, bytes_per_pixel, next_tile
from denoise.inference.noise_level import noise_level_for, sigma_value, takes_noise_level
from denoise.inference.runner import apply_tlc, denoise_image, prepare_network
from denoise.inference.settings import Inference
from denoise.inference.tiling import (
    ModelOutputError,
    Progress,
    accumulator_device,
    blend_weights,
    run_tiled,
    run_whole,
    size_multiple,
    tile_grid,
    tile_starts,
)

__all__ = [
    "MIN_TILE", "Inference", "ModelOutputError", "Progress", "accumulator_device", "apply_tlc", "blend_weights",
    "budget_tile", "bytes_per_pixel", "denoise_image", "device_name", "device_of", "dtype_of", "next_tile",
    "noise_level_for", "prepare_network", "resolve_device", "run_tiled", "run_whole", "sigma_value", "size_multiple",
    "synchronize", "takes_noise_level", "tile_grid", "tile_starts",
]  # fmt: skip
