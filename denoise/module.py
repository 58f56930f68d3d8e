"""DenoiseModule: the one LightningModule that trains, validates and tests every architecture.

The network, optimizer and scheduler arrive as plain ``_target_`` specs (dicts), which are also what
``save_hyperparameters`` stores: a checkpoint rebuilds its model from data alone, and loads with
``weights_only=True`` because it holds no pickled objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from torch import nn
from torchmetrics import MeanMetric

from denoise.config import build, to_plain
from denoise.inference import denoise_image
from denoise.losses import get_loss
from denoise.metrics import image_metrics
from denoise.preemption import collect_rng_states, restore_rng_states


def to_uint8_hwc(image: torch.Tensor) -> Any:
    """``C x H x W`` float in [0, 1] -> ``H x W x C`` uint8 array (W&B reads float arrays as 0-255)."""
    return (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


METRICS = ("psnr", "ssim", "psnr_noisy", "ssim_noisy", "loss")
#: how validation/test images run (denoise/inference.py): whole, or in overlapping tiles; x8 ensemble
DEFAULT_INFERENCE = {"tile": 0, "overlap": 32, "ensemble": False}
DEFAULT_OPTIMIZER = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3}


class DenoiseModule(L.LightningModule):
    """Learns noisy -> clean for any network; logs per-image PSNR/SSIM of the output and of the input."""

    def __init__(
        self,
        net: Mapping[str, Any],
        loss: str = "l1",
        optimizer: Mapping[str, Any] | None = None,
        scheduler: Mapping[str, Any] | None = None,
        log_images: int = 4,
        log_image_size: int = 256,
        inference: Mapping[str, Any] | None = None,
        compile: bool = False,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(
            {
                "net": to_plain(net),
                "loss": loss,
                "optimizer": to_plain(optimizer) if optimizer is not None else dict(DEFAULT_OPTIMIZER),
                "scheduler": to_plain(scheduler) if scheduler is not None else None,
                "log_images": log_images,
                "log_image_size": log_image_size,
                "inference": {**DEFAULT_INFERENCE, **to_plain(inference or {})},
                "compile": compile,
                "channels_last": channels_last,
            }
        )
        self.net: nn.Module = build(self.hparams.net, what="model.net")
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net.to(memory_format=self.memory_format)
        if compile:  # in place (nn.Module.compile): parameter names, hence checkpoints, stay free of _orig_mod.
            self.net.compile()
        self.loss_fn = get_loss(loss)
        self.stage_metrics = nn.ModuleDict(
            {f"{stage}_{name}": MeanMetric() for stage in ("val", "test") for name in METRICS}
        )
        self._examples: list[tuple[str, torch.Tensor]] = []
        self._per_dataset: list[str] = []

    def setup(self, stage: str) -> None:
        """Per-dataset metrics when the data mixes several datasets (``data=real``): created here, from the
        datamodule, identically on every rank, so DDP syncs the same metrics everywhere."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        self._per_dataset = list(getattr(datamodule, "dataset_names", []) or [])
        for split in ("val", "test"):
            for dataset in self._per_dataset:
                for name in METRICS:
                    key = f"{split}__{dataset}__{name}"
                    if key not in self.stage_metrics:
                        self.stage_metrics[key] = MeanMetric().to(self.device)

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        """Denoise a batch of any height and width (padded to the network's multiple, cropped back; tiled
        above ``inference.tile`` pixels a side)."""
        options = self.hparams.get("inference") or DEFAULT_INFERENCE
        noisy = noisy.contiguous(memory_format=self.memory_format)
        return denoise_image(self.net, noisy, int(options["tile"]), int(options["overlap"]), bool(options["ensemble"]))

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        pred = self.net(batch["noisy"].contiguous(memory_format=self.memory_format))
        loss = self.loss_fn(pred.float(), batch["clean"].float())
        self._stop_if_not_finite(loss, batch_idx)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["noisy"].shape[0])
        return loss

    def _stop_if_not_finite(self, loss: torch.Tensor, batch_idx: int) -> None:
        """Stop before a NaN/inf loss reaches the weights. Checked before the backward pass, so the weights and
        every checkpoint saved so far are still good; under DDP all ranks agree first, so all stop together
        instead of one waiting forever in the gradient all-reduce."""
        finite = bool(torch.isfinite(loss.detach()))
        if self._trainer is not None and self.trainer.world_size > 1:
            finite = self.trainer.strategy.reduce_boolean_decision(finite, all=True)
        if not finite:
            raise FloatingPointError(
                f"training stopped: the loss is not finite ({loss.item()}) at global step {self.global_step} "
                f"(epoch {self.current_epoch}, batch {batch_idx}); the checkpoints saved before it are kept. "
                "Try a lower model.optimizer.lr, trainer.gradient_clip_val=1.0, or trainer.precision=32 if "
                "fp16 overflowed"
            )

    def _evaluate(self, batch: Mapping[str, Any], stage: str) -> torch.Tensor:
        noisy, clean = batch["noisy"], batch["clean"]
        denoised = self(noisy).float().clamp(0.0, 1.0)
        values = image_metrics(denoised, noisy, clean)
        values["loss"] = torch.stack(
            [self.loss_fn(d[None], c[None].float()) for d, c in zip(denoised, clean, strict=True)]
        )
        # DDP pads evaluation sets with weight-0 repeats so each real image counts exactly once
        weight = batch.get("weight")
        weight = torch.ones_like(values["psnr"]) if weight is None else weight.to(values["psnr"])
        for name, per_image in values.items():
            metric = self.stage_metrics[f"{stage}_{name}"]
            metric.update(per_image, weight)
            self.log(f"{stage}/{name}", metric, prog_bar=name == "psnr", batch_size=per_image.numel())
        if self._per_dataset and "dataset" in batch:
            for dataset in set(batch["dataset"]):
                index = torch.tensor([i for i, d in enumerate(batch["dataset"]) if d == dataset], device=weight.device)
                for name, per_image in values.items():
                    self.stage_metrics[f"{stage}__{dataset}__{name}"].update(per_image[index], weight[index])
        return denoised

    def _log_per_dataset(self, stage: str) -> None:
        """Compute (synced across ranks), log and reset each dataset's metrics: ``<stage>/<dataset>/<metric>``."""
        for dataset in self._per_dataset:
            for name in METRICS:
                metric = self.stage_metrics[f"{stage}__{dataset}__{name}"]
                value = metric.compute()
                metric.reset()
                if torch.isfinite(value):
                    self.log(f"{stage}/{dataset}/{name}", value, sync_dist=False)

    def on_test_epoch_end(self) -> None:
        self._log_per_dataset("test")

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        denoised = self._evaluate(batch, "val")
        if not self.trainer.sanity_checking:
            self._collect_examples(batch, denoised)

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    # -- example images -------------------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._examples = []

    def _collect_examples(self, batch: Mapping[str, Any], denoised: torch.Tensor) -> None:
        """Keep a noisy | denoised | clean strip of the first few validation images (center crops)."""
        if self.global_rank != 0 or not self._image_loggers():
            return
        size = self.hparams.log_image_size
        for i in range(denoised.shape[0]):
            if len(self._examples) >= self.hparams.log_images:
                return
            if "weight" in batch and float(batch["weight"][i]) == 0.0:
                continue
            strips = [batch["noisy"][i].float().clamp(0, 1), denoised[i], batch["clean"][i].float()]
            height, width = strips[0].shape[-2:]
            top, left = max(0, (height - size) // 2), max(0, (width - size) // 2)
            strips = [s[:, top : top + size, left : left + size] for s in strips]
            grid = torch.cat(strips, dim=-1).detach().cpu()
            name = batch["name"][i] if "name" in batch else str(len(self._examples))
            self._examples.append((str(name), grid))

    def on_validation_epoch_end(self) -> None:
        self._log_per_dataset("val")
        examples = self._examples
        if not examples:
            return
        for logger in self._image_loggers():
            if isinstance(logger, WandbLogger):
                logger.log_image(
                    key="val/examples",
                    images=[to_uint8_hwc(grid) for _, grid in examples],
                    caption=[f"{name}: noisy | denoised | clean" for name, _ in examples],
                    step=self.global_step,
                )
            elif isinstance(logger, TensorBoardLogger):
                for name, grid in examples:
                    logger.experiment.add_image(f"val/examples/{name}", grid, self.global_step)
        self._examples = []

    def _image_loggers(self) -> list[Any]:
        return [lg for lg in self.trainer.loggers if isinstance(lg, WandbLogger | TensorBoardLogger)]

    # -- optimization ---------------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        # both are Hydra partials: completed here with the parameters and the run's length
        optimizer = build({**self.hparams.optimizer, "_partial_": True}, what="model.optimizer")(self.net.parameters())
        if self.hparams.scheduler is None:
            return {"optimizer": optimizer}
        total_steps = int(self.trainer.estimated_stepping_batches)
        scheduler = build({**self.hparams.scheduler, "_partial_": True}, what="model.scheduler")(
            optimizer, total_steps=total_steps
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}

    # -- checkpoints ----------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # random crops, noise and shuffling continue where they stopped when the run resumes
        checkpoint["rng_states"] = collect_rng_states()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "rng_states" in checkpoint and self._trainer is not None and self.trainer.state.fn == "fit":
            restore_rng_states(checkpoint["rng_states"])
