"""The one padding rule: networks that down-sample pad their input to the size multiple they need and crop
their output back (as NAFNet's ``check_image_size`` does), so every architecture takes any height and width and
nothing outside it pads for it.

Reflection at the bottom and right edges (replication where the image is smaller than the padding); the tiled
inference aligns its tile grid with the same function.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: the pad modes a network's ``pad_mode`` may name: reflect (the suite's), replicate (FFDNet's and KAIR's
#: DRUNet test), zeros (NAFNet's ``check_image_size``); the last two give the authors' outputs with their weights
PAD_MODES = ("reflect", "replicate", "zeros")


def check_pad_mode(mode: str) -> str:
    if mode not in PAD_MODES:
        raise ValueError(f"model.net.pad_mode={mode!r}: expected one of {list(PAD_MODES)}")
    return mode


def pad_to_multiple(x: torch.Tensor, multiple: int, mode: str = "reflect") -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad the bottom/right of ``x`` up to a multiple of ``multiple`` (``mode="replicate"`` or
    ``"zeros"`` where the authors' code pads so); returns the original size."""
    mode = "constant" if mode == "zeros" else mode
    height, width = x.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if torch.compiler.is_exporting():  # symbolic sizes (ONNX export): always pad, by 0 where nothing is needed
        pad_h = (height + multiple - 1) // multiple * multiple - height  # provably a multiple once padded
        pad_w = (width + multiple - 1) // multiple * multiple - width
        return F.pad(x, (0, pad_w, 0, pad_h), mode=mode), (height, width)
    if pad_h or pad_w:
        if mode == "reflect" and not (pad_h < height and pad_w < width):
            mode = "replicate"
        x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
    return x, (height, width)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The top-left ``height x width`` of ``x``: undoes :func:`pad_to_multiple`."""
    return x[..., : size[0], : size[1]]
