"""The training job: fit, test the best checkpoint, write results.json and print the table."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from denoise.data.datamodule import DenoiseDataModule
from denoise.inference import device_name
from denoise.loggers import ResilientWandbLogger
from denoise.preemption import PREEMPTED_EXIT_CODE, PreemptedExit
from denoise.provenance import provenance
from denoise.report import method_rows, print_table, write_json
from denoise.runlock import RunLock
from denoise.specs import to_plain
from denoise.step_log import LearningRates
from denoise.tasks.compose import (
    build_trainer,
    check_accelerator,
    check_mandatory,
    instantiate,
    instantiate_group,
    sweep_group,
)
from denoise.tasks.resume import continue_run, launch_rank, resolve_resume
from denoise.tasks.rundir import refuse_finished_run
from denoise.tasks.schema import check_types
from denoise.tasks.wrapper import task_wrapper

log = logging.getLogger(__name__)
TEST_KEYS = ("test/psnr", "test/ssim", "test/psnr_noisy", "test/ssim_noisy")


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

    The run directory is locked for the whole run (:mod:`denoise.runlock`), so no second process resumes into
    it while this one lives."""
    check_mandatory(cfg, "train.py")
    check_types(cfg, "train.py")
    check_accelerator(cfg.trainer)
    ckpt_path, out = resolve_resume(cfg)
    # continuing a finished run is asked for by naming its checkpoint; a requeued job only continues unfinished ones
    refuse_finished_run(out, cfg, resuming=bool(cfg.get("ckpt_path")) and cfg.get("train", True))
    lock = RunLock(out) if launch_rank() == 0 else None
    if lock is not None:
        lock.acquire()
    try:
        return _train(cfg, ckpt_path, out)
    finally:
        if lock is not None:
            lock.release()


def _train(cfg: DictConfig, ckpt_path: str | None, out: Path) -> float | None:
    if ckpt_path is not None:
        continue_run(cfg, out)
    OmegaConf.resolve(cfg)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)

    datamodule: DenoiseDataModule = instantiate(cfg.data)
    # every split this run will use, checked now: not a missing test folder after an hour of training
    splits = (["train", "val"] if cfg.get("train", True) else []) + (["test"] if cfg.get("test", True) else [])
    datamodule.check_inputs(splits)
    channels_last = bool(cfg.trainer.get("channels_last", False))
    model: L.LightningModule = instantiate(
        cfg.model,
        inference=to_plain(cfg.get("inference")),
        channels_last=channels_last,
        metrics=to_plain(cfg.get("metrics")),
    )
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
        log.warning(
            "%s has no clean images: validation and test report the noise level estimated in the input and the "
            "output (val/noise_in, val/noise_out; 0-255), not PSNR or SSIM",
            type(datamodule).__name__,
        )
        keep_newest_without_ground_truth(callbacks)
    trainer = build_trainer(cfg.trainer, callbacks, loggers)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    try:
        fit_start = time.perf_counter()
        if cfg.get("train", True):
            try:
                trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
            except SIGTERMException:  # last.ckpt is saved (PreemptionCheckpoint): say "resumable" in the status
                log.warning(
                    "Pre-empted: exiting with status %d; ckpt_path=last continues this run", PREEMPTED_EXIT_CODE
                )
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
                )
            except SIGTERMException:  # Lightning's SystemExit would exit 0 with no results.json
                log.warning(
                    "Pre-empted during the test: exiting with status %d; ckpt_path=last tests again and writes "
                    "results.json", PREEMPTED_EXIT_CODE,
                )  # fmt: skip
                raise PreemptedExit() from None
            test_metrics = _floats(trainer.callback_metrics)
    finally:  # W&B itself is finished by the task wrapper
        sync_commands = [lg.sync_command() for lg in loggers if isinstance(lg, ResilientWandbLogger)]

    optimized = cfg.get("optimized_metric")
    value = val_metrics.get(optimized) if optimized else None
    if optimized and value is None and cfg.get("train", True) and not datamodule.has_clean:
        log.warning(
            "optimized_metric=%s needs clean images, which %s does not have; a sweeper gets no value for this run",
            optimized,
            type(datamodule).__name__,
        )
    elif optimized and value is None and cfg.get("train", True):
        log.warning(
            "optimized_metric=%s was never logged (did validation run? an epoch needs at least one batch of "
            "data.batch_size); a sweeper gets no value for this run",
            optimized,
        )
    if trainer.is_global_zero:
        results = {key: test_metrics.get(key) for key in TEST_KEYS}
        results.update({k: v for k, v in test_metrics.items() if k.startswith("test/")})
        results.update(
            {
                "ckpt_path": best_path,
                "run_dir": str(out),
                "world_size": trainer.world_size,
                "global_step": trainer.global_step,
                "epochs": trainer.current_epoch,
                "fit_seconds": fit_seconds,
                "val/psnr": val_metrics.get("val/psnr"),
                "val/psnr_noisy": val_metrics.get("val/psnr_noisy"),
                "precision": str(cfg.trainer.precision),
                "device": device_name(trainer.strategy.root_device),
                "metrics": dict(model.hparams.metrics),
                "objective": model.objective.describe(),
                "eval_precision": str(model.hparams.inference["precision"]),
                "optimized_metric": optimized,
                "optimized_value": value,
                "parameters": sum(p.numel() for p in model.net.parameters()),
                **provenance(),
            }
        )
        write_json(out / "results.json", results)
        summary = {"val/psnr": results["val/psnr"], "best_ckpt": best_path, "parameters": results["parameters"],
                   **{k: v for k, v in results.items() if k.startswith("test/")}}  # fmt: skip
        for logger in loggers:
            if isinstance(logger, ResilientWandbLogger):
                logger.record_summary({k: v for k, v in summary.items() if v is not None})
        network = cfg.model.net._target_.rsplit(".", 1)[-1]
        if all(results.get(k) is not None for k in TEST_KEYS):
            rows = method_rows(results, network)
            print_table(f"test results ({out})", rows, ("method", "psnr", "ssim", "psnr_gain", "ssim_gain"))
        elif results.get("test/noise_in") is not None:
            rows = [{"method": "noisy input", "noise_sigma": results["test/noise_in"]},
                    {"method": network, "noise_sigma": results["test/noise_out"]}]  # fmt: skip
            print_table(f"test results without ground truth: estimated noise sigma, 0-255 ({out})", rows,
                        ("method", "noise_sigma"))  # fmt: skip
        log.info("Results: %s", out / "results.json")
        for command in filter(None, sync_commands):
            log.info("W&B ran offline; upload this run with: %s", command)
    return value
