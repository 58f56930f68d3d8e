"""The training job: fit, test the best checkpoint, write results.json and print the table."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from denoise.config.specs import to_plain
from denoise.data.datamodule import DenoiseDataModule
from denoise.data.files import remove_stale_partials
from denoise.data.interrupt import StopSignalError
from denoise.evaluation.report import write_json
from denoise.inference import device_name
from denoise.tasks.compose import (
    build_trainer,
    check_accelerator,
    instantiate,
    instantiate_group,
    sweep_group,
)
from denoise.tasks.results import print_test_table, run_record
from denoise.tasks.resume import check_training_data, continue_run, launch_rank, resolve_resume
from denoise.tasks.rundir import admit_run, keep_earlier_results, refuse_finished_run
from denoise.tasks.schema import check_mandatory, check_types
from denoise.tasks.wrapper import task_wrapper
from denoise.training.loggers import ResilientWandbLogger
from denoise.training.preemption import PREEMPTED_EXIT_CODE, PreemptedExit
from denoise.training.runlock import RunLock
from denoise.training.step_log import LearningRates

log = logging.getLogger(__name__)


def keep_newest_without_ground_truth(callbacks: list[Callback]) -> None:
    """Without clean images there is no val/psnr to pick a best checkpoint by: the checkpoint that would watch it
    keeps the newest weights instead (and the test runs on them)."""
    for callback in callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.monitor == "val/psnr":
            callback.monitor, callback.filename = None, "epoch{epoch:03d}"
            log.info("No clean images: checkpoints keep the newest weights (no val/psnr to choose the best by)")


def _floats(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, torch.Tensor | float | int)}


@task_wrapper
def train(cfg: DictConfig) -> float | None:
    """Fit, test the best checkpoint, write results.json, print a table; return the metric sweepers optimize.

    Everything that can refuse the run (the config, the checkpoint to resume, a finished run's folder, the lock of
    a live one, the data) is checked before the run writes anything (:func:`denoise.tasks.rundir.admit_run`). The
    run directory is locked for the whole run (:mod:`denoise.training.runlock`), so no second process resumes
    into it while this one lives."""
    check_mandatory(cfg, "train.py")
    check_types(cfg, "train.py")
    check_accelerator(cfg.trainer)
    ckpt_path, out = resolve_resume(cfg)
    # continuing a finished run is asked for by naming its checkpoint; a requeued job only continues unfinished ones
    resuming = bool(cfg.get("ckpt_path")) and bool(cfg.get("train", True))
    refuse_finished_run(out, cfg, resuming=resuming)
    lock = RunLock(out) if launch_rank() == 0 else None
    if lock is not None:
        lock.acquire()
    try:
        return _train(cfg, ckpt_path, out, resuming)
    finally:
        if lock is not None:
            lock.release()


@dataclass
class Parts:
    """What a run is made of, built from its config before anything trains."""

    datamodule: DenoiseDataModule
    model: L.LightningModule
    loggers: list[Logger]
    trainer: L.Trainer


@dataclass
class Outcome:
    """What fitting and testing gave: the best checkpoint, the validation and test scores, the seconds."""

    best_path: str | None
    val_metrics: dict[str, float]
    test_metrics: dict[str, float]
    fit_seconds: float


def _train(cfg: DictConfig, ckpt_path: str | None, out: Path, resuming: bool) -> float | None:
    if ckpt_path is not None:
        continue_run(cfg, out)
    OmegaConf.resolve(cfg)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    parts = build_parts(cfg, ckpt_path)
    if resuming:
        keep_earlier_results(out, cfg)
    for folder in (out, out / "checkpoints"):  # what saves cut short by a kill left, before this run saves again
        for path in remove_stale_partials(folder):
            log.info("Removed %s, left by a killed process's save", path)
    for logger in parts.loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    try:
        outcome = fit_and_test(cfg, parts, ckpt_path)
    finally:  # W&B itself is finished by the task wrapper
        sync_commands = [lg.sync_command() for lg in parts.loggers if isinstance(lg, ResilientWandbLogger)]
    value = optimized_value(cfg, outcome, parts.datamodule)
    if parts.trainer.is_global_zero:
        results = training_results(cfg, parts, outcome, out, value)
        write_json(out / "results.json", results)
        record_summary(parts.loggers, results)
        print_test_table(results, cfg.model.net._target_.rsplit(".", 1)[-1], out)
        log.info("Results: %s", out / "results.json")
        for command in filter(None, sync_commands):
            log.info("W&B ran offline; upload this run with: %s", command)
    return value


def build_parts(cfg: DictConfig, ckpt_path: str | None = None) -> Parts:
    """The data (every split this run uses checked now, not a missing test folder after an hour of training; the
    training files against those under the checkpoint being resumed), the model (its channels checked against
    the data's), what the objective needs served, the loggers, callbacks and trainer; then the run is admitted
    (nothing is written before)."""
    datamodule: DenoiseDataModule = instantiate(cfg.data)
    splits = (["train", "val"] if cfg.get("train", True) else []) + (["test"] if cfg.get("test", True) else [])
    datamodule.check_inputs(splits)
    if ckpt_path is not None and cfg.get("train", True):
        check_training_data(datamodule, ckpt_path, datamodule.allow_changed)
    model: L.LightningModule = instantiate(cfg.model, inference=to_plain(cfg.get("inference")),
                                           channels_last=bool(cfg.trainer.get("channels_last", False)),
                                           metrics=to_plain(cfg.get("metrics")))  # fmt: skip
    network_channels = model.hparams.net.get("in_channels")
    if network_channels is not None and network_channels != datamodule.channels:
        raise ValueError(
            f"model.net.in_channels={network_channels} but the data gives {datamodule.channels}-channel images "
            f"(data.grayscale={datamodule.grayscale}); leave model.net.in_channels at ${{data.channels}}"
        )
    # what the objective learns from, before the data is set up: a second noisy shot only when asked for
    # and the known noise level, for networks that take one (FFDNet, DRUNet; estimated where the data has none)
    needs = model.objective.needs | ({"noise_level"} if getattr(model, "takes_noise_level", False) else set())
    datamodule.serve(needs, model.objective.name)
    group = sweep_group(str(cfg.get("task_name", "train")))
    if group and "wandb" in (cfg.get("logger") or {}) and not cfg.logger.wandb.get("group"):
        cfg.logger.wandb.group = group  # a sweep's runs (Optuna trials, a grid) grouped in W&B
    loggers: list[Logger] = instantiate_group(cfg.get("logger"), "logger")
    callbacks: list[Callback] = instantiate_group(cfg.get("callbacks"), "callbacks")
    if not loggers:  # Lightning refuses an LR monitor without a logger
        callbacks = [cb for cb in callbacks if not isinstance(cb, LearningRateMonitor | LearningRates)]
    if not datamodule.has_clean:
        log.warning("%s has no clean images: validation and test report the noise level estimated in the input "
                    "and the output (val/noise_in, val/noise_out; 0-255), not PSNR or SSIM",
                    type(datamodule).__name__)  # fmt: skip
        keep_newest_without_ground_truth(callbacks)
    trainer = build_trainer(cfg.trainer, callbacks, loggers)
    admit_run()  # every check passed: the run's .hydra/ and log are written from here on
    return Parts(datamodule, model, loggers, trainer)


def _preempted(during: str) -> PreemptedExit:
    log.warning("Pre-empted %s: exiting with status %d; ckpt_path=last continues this run (and writes "
                "results.json)", during, PREEMPTED_EXIT_CODE)  # fmt: skip
    return PreemptedExit()


def fit_and_test(cfg: DictConfig, parts: Parts, ckpt_path: str | None) -> Outcome:
    """Fit (resuming from ``ckpt_path``), then test the best checkpoint; a pre-emption in either exits 75 with
    last.ckpt saved (Lightning's own SystemExit would exit 0 with no results.json)."""
    trainer, model, datamodule = parts.trainer, parts.model, parts.datamodule
    fit_start = time.perf_counter()
    if cfg.get("train", True):
        try:
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        except SIGTERMException:
            raise _preempted("during training") from None
        except StopSignalError as err:  # before training began (the patch store's build): nothing to resume yet
            code = PREEMPTED_EXIT_CODE
            log.warning("Pre-empted: %s. Exiting with status %d; the same command starts again", err, code)
            raise PreemptedExit() from None
    fit_seconds = time.perf_counter() - fit_start
    checkpoint = next((cb for cb in trainer.callbacks if isinstance(cb, ModelCheckpoint)), None)
    best_path = checkpoint.best_model_path if checkpoint is not None and checkpoint.best_model_path else None
    val_metrics = _floats(trainer.callback_metrics)
    if checkpoint is not None and checkpoint.best_model_score is not None and checkpoint.monitor:
        val_metrics[checkpoint.monitor] = float(checkpoint.best_model_score)
    test_metrics: dict[str, float] = {}
    if cfg.get("test", True):
        if best_path is None:
            log.warning("No best checkpoint was saved; testing the current weights")
        try:
            trainer.test(
                model,
                datamodule=datamodule,
                ckpt_path=best_path if cfg.get("train", True) else ckpt_path,
                weights_only=True,
                verbose=False,
            )  # fmt: skip  (the table is the suite's own, below)
        except SIGTERMException:
            raise _preempted("during the test") from None
        test_metrics = _floats(trainer.callback_metrics)
    return Outcome(best_path, val_metrics, test_metrics, fit_seconds)


def optimized_value(cfg: DictConfig, outcome: Outcome, datamodule: DenoiseDataModule) -> float | None:
    """What train() returns to a sweeper (``optimized_metric``), with a warning where the run gives none."""
    optimized = cfg.get("optimized_metric")
    value = outcome.val_metrics.get(optimized) if optimized else None
    if optimized and value is None and cfg.get("train", True):
        unlogged = "was never logged (did validation run? an epoch needs at least one batch of data.batch_size)"
        why = (
            f"needs clean images, which {type(datamodule).__name__} does not have"
            if not datamodule.has_clean
            else unlogged
        )
        log.warning("optimized_metric=%s %s; a sweeper gets no value for this run", optimized, why)
    return value


def training_results(cfg: DictConfig, parts: Parts, outcome: Outcome, out: Path, value: float | None) -> dict:
    """train.py's results.json, in the one schema (:func:`denoise.tasks.results.run_record`)."""
    model, trainer = parts.model, parts.trainer
    return run_record(
        out, model.hparams.metrics, str(model.hparams.inference["precision"]),
        device_name(trainer.strategy.root_device), outcome.test_metrics,
        ckpt_path=outcome.best_path, world_size=trainer.world_size, global_step=trainer.global_step,
        epochs=trainer.current_epoch, fit_seconds=outcome.fit_seconds,
        **{key: outcome.val_metrics.get(key) for key in ("val/psnr", "val/psnr_noisy")},
        precision=str(cfg.trainer.precision), objective=model.objective.describe(),
        optimized_metric=cfg.get("optimized_metric"), optimized_value=value,
        parameters=sum(p.numel() for p in model.net.parameters()),
        test_is_validation=parts.datamodule.test_is_validation(),
    )  # fmt: skip


def record_summary(loggers: list[Logger], results: dict) -> None:
    """The W&B summary: the best val/psnr (not the last epoch's), the test scores, the size, the checkpoint."""
    summary = {"val/psnr": results["val/psnr"], "best_ckpt": results["ckpt_path"], "parameters": results["parameters"],
               **{k: v for k, v in results.items() if k.startswith("test/")}}  # fmt: skip
    for logger in loggers:
        if isinstance(logger, ResilientWandbLogger):
            logger.record_summary({k: v for k, v in summary.items() if v is not None})
