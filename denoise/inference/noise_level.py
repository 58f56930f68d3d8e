"""The noise-level input of the networks that take one (FFDNet, DRUNet): the known level, an estimate, or a
number, decided once for the whole image; and reading a sigma setting."""

from __future__ import annotations

import torch
from torch import nn

from denoise.data.noise_estimate import haar_sigma
from denoise.models.noise_map import noise_level_map


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
    return noise_level_map(haar_sigma(x), x)
