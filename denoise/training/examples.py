"""The validation examples W&B and TensorBoard show: a noisy | denoised | clean strip (centre crops) of the first
few validation images, logged at the end of each validation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

from denoise.data.io import tensor2uint


def image_loggers(loggers: Sequence[Any]) -> list[Any]:
    """The loggers that take pictures (W&B, TensorBoard)."""
    return [lg for lg in loggers if isinstance(lg, WandbLogger | TensorBoardLogger)]


class ExampleImages:
    """Up to ``count`` strips of ``size`` pixels, collected during a validation and logged at its end."""

    def __init__(self, count: int, size: int) -> None:
        self.count, self.size = count, size
        self.kept: list[tuple[str, torch.Tensor]] = []

    def collect(self, batch: Mapping[str, Any], denoised: torch.Tensor) -> None:
        """Keep a noisy | denoised | clean strip of the batch's images until ``count`` are kept (padding
        repeats, of weight 0, are skipped)."""
        for i in range(denoised.shape[0]):
            if len(self.kept) >= self.count:
                return
            if "weight" in batch and float(batch["weight"][i]) == 0.0:
                continue
            strips = [batch["noisy"][i].float().clamp(0, 1), denoised[i]]
            strips += [batch["clean"][i].float()] if "clean" in batch else []
            height, width = strips[0].shape[-2:]
            top, left = max(0, (height - self.size) // 2), max(0, (width - self.size) // 2)
            strips = [s[:, top : top + self.size, left : left + self.size] for s in strips]
            name = batch["name"][i] if "name" in batch else str(len(self.kept))
            self.kept.append((str(name), torch.cat(strips, dim=-1).detach().cpu()))

    def log(self, loggers: Sequence[Any], step: int) -> None:
        """Every kept strip to every picture logger, then forget them."""
        for logger in image_loggers(loggers) if self.kept else []:
            if isinstance(logger, WandbLogger):
                logger.log_image(
                    key="val/examples",
                    images=[tensor2uint(grid) for _, grid in self.kept],  # W&B reads floats as 0-255
                    caption=[f"{name}: noisy | denoised | clean" for name, _ in self.kept],
                    step=step,
                )
            elif isinstance(logger, TensorBoardLogger):
                for name, grid in self.kept:
                    logger.experiment.add_image(f"val/examples/{name}", grid, step)
        self.kept = []
