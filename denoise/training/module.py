"""DenoiseModule: the one LightningModule that trains, validates and tests every architecture. The network, loss,
objective, optimizer and scheduler arrive as plain ``_target_`` specs (dicts), which are also what
``save_hyperparameters`` stores: a checkpoint rebuilds its model from data alone, and loads with
``weights_only=True`` (no pickles)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Timer
from torch import nn
from torchmetrics import MeanMetric

from denoise.config.specs import build, check_literal, check_spec, loss_spec, objective_spec, to_plain
from denoise.data.noise_estimate import batch_wavelet_sigma
from denoise.evaluation.metrics import Convention, image_metrics
from denoise.inference import Inference, denoise_image, noise_level_for, prepare_network, takes_noise_level
from denoise.inference.precision import exact_float
from denoise.models.noise_map import noise_level_map
from denoise.provenance import provenance
from denoise.training.examples import ExampleImages, image_loggers
from denoise.training.finite_guard import FiniteLossGuard
from denoise.training.objectives import Objective
from denoise.training.optim import resolve_fused, run_progress
from denoise.training.preemption import collect_rng_states, restore_rng_states
from denoise.training.step_log import StepScalars, log_to

METRICS = ("psnr", "ssim", "psnr_noisy", "ssim_noisy", "loss", "noise_in", "noise_out")
DEFAULT_OPTIMIZER = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3}


def hyperparameters(
    net: Mapping[str, Any], loss: Mapping[str, Any], optimizer: Mapping[str, Any] | None,
    scheduler: Mapping[str, Any] | None,
    log_images: int, log_image_size: int, settings: Inference, compile: bool, channels_last: bool,
    metrics: Mapping[str, Any] | None, objective: Mapping[str, Any] | None,
) -> dict[str, Any]:  # fmt: skip
    """What a checkpoint stores to rebuild the module from data alone: plain specs, literals, the settings."""
    return {
        "net": to_plain(net),
        "loss": to_plain(loss),
        "optimizer": to_plain(optimizer) if optimizer is not None else dict(DEFAULT_OPTIMIZER),
        "scheduler": to_plain(scheduler) if scheduler is not None else None,
        "log_images": log_images,
        "log_image_size": log_image_size,
        "inference": settings.as_dict(),
        "compile": compile,
        "channels_last": channels_last,
        "metrics": asdict(Convention.of(metrics)),
        "objective": objective_spec(objective),
    }


class DenoiseModule(L.LightningModule):
    """Learns noisy -> clean for any network; logs per-image PSNR/SSIM of the output and of the input."""

    def __init__(
        self,
        net: Mapping[str, Any],
        loss: Mapping[str, Any] | str | None = None,
        optimizer: Mapping[str, Any] | None = None,
        scheduler: Mapping[str, Any] | None = None,
        log_images: int = 4,
        log_image_size: int = 256,
        inference: Mapping[str, Any] | None = None,
        compile: bool = False,
        channels_last: bool = False,
        metrics: Mapping[str, Any] | None = None,
        objective: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        check_literal(to_plain(inference or {}), "inference")
        settings = Inference.of(to_plain(inference or {}))  # how validation and test images run (one value)
        loss = loss_spec(loss)  # None: L1; a name that an older checkpoint stored: its spec
        for spec, kind in ((loss, "loss"), (optimizer, "optimizer"), (scheduler, "scheduler")):
            if spec is not None:  # built later (configure_optimizers): refused now, when it arrives
                check_spec(to_plain(spec), f"model.{kind}", kind)
        hparams = hyperparameters(net, loss, optimizer, scheduler, log_images, log_image_size, settings, compile,
                                  channels_last, metrics, objective)  # fmt: skip
        self.save_hyperparameters(hparams, logger=False)  # train.py logs the whole composed config once
        self.net: nn.Module = build(self.hparams.net, what="model.net", kind="network")
        self.inference = settings  # how validation and test images run, as stored in the hyperparameters
        prepare_network(self.net, settings, self.hparams.net.get("in_channels"))  # TLC, when asked for
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net.to(memory_format=self.memory_format)
        if compile:  # in place (nn.Module.compile): parameter names, hence checkpoints, stay free of _orig_mod.
            self.net.compile()
        self.loss_fn: nn.Module = build(self.hparams.loss, what="model.loss", kind="loss")
        self.convention = Convention.of(self.hparams.get("metrics"))
        self.objective: Objective = build(self.hparams.objective, what="model.objective", kind="objective")
        self.objective.check_network(self.net)
        self.stage_metrics = nn.ModuleDict(
            {f"{stage}_{name}": MeanMetric() for stage in ("val", "test") for name in METRICS}
        )
        self._examples = ExampleImages(log_images, log_image_size)
        self._per_dataset: list[str] = []
        self._finite_guard = FiniteLossGuard()
        self._step_scalars = StepScalars()
        self._loss: torch.Tensor | None = None
        #: the training loss of the latest logging step that reached the host (what the progress bar shows)
        self.train_loss_shown: float | None = None
        #: (total steps, time-budget fraction) of the run, as the LR schedules see it; set at the first step
        self._run_clock: tuple[int, Callable[[], float] | None] | None = None

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

    @property
    def takes_noise_level(self) -> bool:
        """Whether the network reads a noise-level map (FFDNet, DRUNet)."""
        return takes_noise_level(self.net)

    def forward(self, noisy: torch.Tensor, noise_level: torch.Tensor | None = None) -> torch.Tensor:
        """Denoise a batch of any height and width (padded to the network's multiple, cropped back; tiled
        above ``inference.tile`` pixels a side), in ``inference.precision`` whatever the training precision.
        ``noise_level``: the data's known noise level (a ``B x 1 x H x W`` map, [0, 1] scale), for networks that
        take one; ``inference.noise_level`` says whether it, an estimate or a fixed number is used."""
        noisy = noisy.contiguous(memory_format=self.memory_format)
        return denoise_image(self.net, noisy, self.inference, known_level=noise_level)

    def _net(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.contiguous(memory_format=self.memory_format))

    def _training_net(self, batch: Mapping[str, Any]):
        """The network an objective calls; a noise-level network gets the batch's known level map (synthetic
        noise) or its estimate (real noise), per image when the objective's input is another size."""
        if not self.takes_noise_level:
            return self._net
        level = noise_level_for(batch["noisy"], "auto", batch.get("noise_level"))  # known, else estimated

        def net(x: torch.Tensor) -> torch.Tensor:
            x_level = level if x.shape[-2:] == level.shape[-2:] else level.mean(dim=(-2, -1), keepdim=True)
            return self.net(x.contiguous(memory_format=self.memory_format), noise_level_map(x_level, x))

        return net

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self.objective(self._training_net(batch), batch, self.loss_fn, self._run_progress())
        self._finite_guard.record(loss, self.global_step, self.current_epoch, batch_idx)
        self._loss = loss.detach()  # logged at logging steps without a host wait (on_train_batch_end)
        return loss

    # -- the non-finite loss guard: checked where the host waits anyway, never every step -------------------
    def check_finite(self, where: str) -> None:
        """Raise if any training step since the start (on any rank) had a non-finite loss; every rank calls this
        at the same points, so all stop together."""
        distributed = self._trainer is not None and self.trainer.world_size > 1
        self._finite_guard.check(where, self.all_gather if distributed else None)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """At logging steps the loss (and the non-finite guard's record) start their way to the host, and what
        arrived from earlier logging steps is logged and checked: no host wait (:mod:`denoise.training.step_log`)."""
        if self.global_step % max(int(self.trainer.log_every_n_steps), 1) or self._loss is None:
            return
        if self.trainer.world_size > 1:  # every rank checks at the same point (a collective): synchronously
            self.check_finite(f"logging step {self.global_step}")
            self._step_scalars.push(self.global_step, {"train/loss": self._loss})
        else:
            self._step_scalars.push(self.global_step, {"train/loss": self._loss, **self._finite_guard.packed()})
        self._report_steps(wait=False)

    def _report_steps(self, wait: bool, check: bool = True) -> None:
        """Log the logging steps whose values have reached the host (all of them with ``wait``), and stop on a
        non-finite loss among them (unless ``check``)."""
        for step, values in self._step_scalars.ready(wait):
            bad_step, bad_value = values.pop("guard/step", -1.0), values.pop("guard/value", 0.0)
            if check and bad_step >= 0:
                self._finite_guard.raise_for(bad_step, bad_value, f"logging step {step}")
            self.train_loss_shown = values["train/loss"]
            if self.trainer.is_global_zero:
                log_to(self.loggers, step, values)

    def flush_step_log(self) -> None:
        """Log whatever logging steps are still on their way (a pre-emption: the run's history stays whole)."""
        self._report_steps(wait=True, check=False)

    def on_train_epoch_end(self) -> None:  # before ModelCheckpoint saves at the epoch's end
        self._report_steps(wait=True)  # the host waits for the epoch's end here anyway
        self.check_finite(f"the end of epoch {self.current_epoch}")

    def on_validation_epoch_start(self) -> None:  # before a validation (and the checkpoint it leads to)
        self._examples.kept = []
        if self._trainer is not None and self.trainer.state.fn == "fit" and not self.trainer.sanity_checking:
            self.check_finite(f"the validation at global step {self.global_step}")

    def _evaluate(self, batch: Mapping[str, Any], stage: str) -> torch.Tensor:
        noisy, clean = batch["noisy"], batch.get("clean")
        denoised = self(noisy, batch.get("noise_level")).float().clamp(0.0, 1.0)
        if clean is None:  # no ground truth (data=noisy_folder): the noise level left, against the input's
            values = {"noise_in": batch_wavelet_sigma(noisy), "noise_out": batch_wavelet_sigma(denoised)}
        else:
            values = image_metrics(denoised, noisy, clean, self.convention)  # float64, no autocast, no TF32
            with exact_float(denoised.device.type):
                values["loss"] = torch.stack(
                    [self.loss_fn(d[None], c[None].float()) for d, c in zip(denoised, clean, strict=True)]
                )
        # DDP pads evaluation sets with weight-0 repeats so each real image counts exactly once
        weight = batch.get("weight")
        first = next(iter(values.values()))
        weight = torch.ones_like(first) if weight is None else weight.to(first)
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
        if not self.trainer.sanity_checking and self.global_rank == 0 and image_loggers(self.trainer.loggers):
            self._examples.collect(batch, denoised)

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    # -- example images (denoise.training.examples) --------------------------------------------------
    def on_validation_epoch_end(self) -> None:
        self._log_per_dataset("val")
        self._examples.log(self.trainer.loggers, self.global_step)

    # -- optimization ---------------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        # both are Hydra partials: completed here with the parameters and the run's length
        spec = resolve_fused(dict(self.hparams.optimizer), self.device.type)  # fused: auto -> fused on CUDA
        optimizer = build({**spec, "_partial_": True}, what="model.optimizer", kind="optimizer")(self.net.parameters())
        if self.hparams.scheduler is None:
            return {"optimizer": optimizer}
        total_steps = int(self.trainer.estimated_stepping_batches)
        factory = build({**self.hparams.scheduler, "_partial_": True}, what="model.scheduler", kind="scheduler")
        extra = {}
        time_fraction = self._time_budget_fraction()
        if time_fraction is not None and "time_fraction" in inspect.signature(factory.func).parameters:
            extra["time_fraction"] = time_fraction  # trainer.max_time: the schedule ends when the budget does
        scheduler = factory(optimizer, total_steps=total_steps, **extra)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}

    def _run_progress(self) -> float:
        """How far through the run training is (0 to 1), counted as the LR schedules count it: by steps, or by
        ``trainer.max_time`` where that is further (Neighbor2Neighbor's regularizer ramps up with it)."""
        if self._trainer is None:
            return 1.0
        if self._run_clock is None:
            self._run_clock = (int(self.trainer.estimated_stepping_batches), self._time_budget_fraction())
        return run_progress(self.global_step, *self._run_clock)

    def _time_budget_fraction(self) -> Callable[[], float] | None:
        """The share of ``trainer.max_time`` spent so far (Lightning's Timer clock), or None without a budget."""
        timer = next((cb for cb in self.trainer.callbacks if isinstance(cb, Timer)), None)
        if timer is None or timer.time_remaining() is None:
            return None

        def fraction() -> float:
            elapsed, remaining = timer.time_elapsed(), timer.time_remaining() or 0.0
            return elapsed / (elapsed + remaining) if elapsed + remaining > 0 else 1.0

        return fraction

    # -- checkpoints ----------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # the last line of the guard: whatever saves, no checkpoint file ever holds non-finite weights
        self._finite_guard.refuse_non_finite(checkpoint.get("state_dict", {}), self.global_step)
        # random crops, noise and shuffling continue where they stopped when the run resumes
        checkpoint["rng_states"] = collect_rng_states()
        checkpoint["denoise"] = provenance()  # the code that made these weights: version, git commit

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "rng_states" in checkpoint and self._trainer is not None and self.trainer.state.fn == "fit":
            restore_rng_states(checkpoint["rng_states"])
