"""The losses that ``model.loss`` may name besides PyTorch's ``L1Loss`` and ``MSELoss``: chosen like every other
part, by a ``_target_`` spec (``conf/model/loss/``: ``model/loss=l1 | l2 | charbonnier | psnr``)."""

from __future__ import annotations

import math

import torch
from torch import nn


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Smooth L1 ``sqrt((x - y)^2 + eps^2)`` (Lai et al. 2017), robust like L1 but differentiable at 0."""
    return torch.sqrt((pred - target) ** 2 + eps * eps).mean()


def psnr_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Negative per-image PSNR averaged over the batch, as NAFNet trains; minimizing it maximizes PSNR."""
    mse = ((pred - target) ** 2).flatten(1).mean(dim=1)
    return (10.0 / math.log(10.0)) * torch.log(mse + 1e-8).mean()


class CharbonnierLoss(nn.Module):
    """:func:`charbonnier` as a module, its ``eps`` set in the config (SwinIR trains with 1e-3)."""

    def __init__(self, eps: float = 1e-3) -> None:
        super().__init__()
        if not eps > 0:
            raise ValueError(f"model.loss.eps={eps!r}: expected a number > 0")
        self.eps = float(eps)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return charbonnier(pred, target, self.eps)


class PSNRLoss(nn.Module):
    """:func:`psnr_loss` as a module."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return psnr_loss(pred, target)
