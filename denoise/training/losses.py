"""Training losses by name: ``l1 | l2 | charbonnier | psnr`` (``model.loss``)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Smooth L1 ``sqrt((x - y)^2 + eps^2)`` (Lai et al. 2017), robust like L1 but differentiable at 0."""
    return torch.sqrt((pred - target) ** 2 + eps * eps).mean()


def psnr_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Negative per-image PSNR averaged over the batch, as NAFNet trains; minimizing it maximizes PSNR."""
    mse = ((pred - target) ** 2).flatten(1).mean(dim=1)
    return (10.0 / math.log(10.0)) * torch.log(mse + 1e-8).mean()


LOSSES: dict[str, Loss] = {"l1": F.l1_loss, "l2": F.mse_loss, "charbonnier": charbonnier, "psnr": psnr_loss}


def get_loss(name: str) -> Loss:
    if name not in LOSSES:
        raise ValueError(f"model.loss={name!r} is unknown; expected one of {sorted(LOSSES)}")
    return LOSSES[name]
