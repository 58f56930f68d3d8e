"""The two jobs, ``train(cfg)`` and ``evaluate(cfg)``: build everything from the composed config and run it.

Only this module and the entry points know Hydra; the data, models and the LightningModule receive
plain values.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate as hydra_instantiate
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from denoise.checkpoint import load_network, safe_load
from denoise.data.datamodule import DenoiseDataModule
from denoise.inference import run_padded
from denoise.loggers import ResilientWandbLogger
from denoise.metrics import image_metrics
from denoise.report import (
    RESULT_COLUMNS,
    method_rows,
    print_table,
    write_csv,
    write_json,
    write_markdown,
)

log = logging.getLogger(__name__)
# Lightning's own use of a torch API deprecated in torch 2.10+; nothing a user can act on
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
TEST_KEYS = ("test/psnr", "test/ssim", "test/psnr_noisy", "test/ssim_noisy")


def instantiate(config: Any, **kwargs: Any) -> Any:
    """Hydra's instantiate, but our own config errors (which name the key or file) surface unwrapped."""
    try:
        return hydra_instantiate(config, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, ValueError | OSError | TypeError):
            raise err.__cause__ from None
        raise


def run_dir() -> Path:
    """The Hydra run directory of this job (the current directory outside a Hydra app)."""
    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path.cwd()


def instantiate_group(cfg: DictConfig | None, key: str) -> list[Any]:
    """Instantiate every ``_target_`` entry of a dict-of-configs group (callbacks, logger)."""
    if not cfg:
        return []
    if not isinstance(cfg, DictConfig):
        raise TypeError(f"{key} must be a mapping of name -> config, got {type(cfg).__name__}")
    objects = []
    for name, entry in cfg.items():
        if isinstance(entry, DictConfig) and "_target_" in entry:
            objects.append(instantiate(entry))
        elif entry is not None:
            raise ValueError(f"{key}.{name} has no _target_; expected a config to instantiate")
    return objects


def find_last_checkpoint(log_dir: Path, task_name: str, exclude: Path | None = None) -> Path:
    """``ckpt_path=last``: the newest ``last.ckpt`` among earlier runs of this task."""
    runs = sorted((log_dir / task_name / "runs").glob("*/checkpoints/last.ckpt"))
    runs = [p for p in runs if exclude is None or exclude.resolve() not in p.resolve().parents]
    if not runs:
        raise FileNotFoundError(
            f"ckpt_path=last: no earlier run of task '{task_name}' has checkpoints/last.ckpt under {log_dir}"
        )
    return runs[-1]


def resolve_ckpt_path(cfg: DictConfig) -> str | None:
    """The checkpoint to resume from, validated as safe (weights_only) before Lightning touches it."""
    ckpt_path = cfg.get("ckpt_path")
    if not ckpt_path:
        return None
    if ckpt_path == "last":
        ckpt_path = str(find_last_checkpoint(Path(cfg.paths.log_dir), cfg.task_name, exclude=run_dir()))
        log.info("Resuming from %s", ckpt_path)
    safe_load(ckpt_path)
    return str(ckpt_path)


def _floats(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, torch.Tensor | float | int)}


def train(cfg: DictConfig) -> float | None:
    """Fit, test the best checkpoint, write results.json, print a table; return the metric sweepers optimize."""
    OmegaConf.resolve(cfg)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    out = run_dir()

    datamodule: DenoiseDataModule = instantiate(cfg.data)
    model: L.LightningModule = instantiate(cfg.model)
    loggers: list[Logger] = instantiate_group(cfg.get("logger"), "logger")
    callbacks: list[Callback] = instantiate_group(cfg.get("callbacks"), "callbacks")
    if not loggers:  # Lightning refuses an LR monitor without a logger
        callbacks = [cb for cb in callbacks if not isinstance(cb, LearningRateMonitor)]
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    ckpt_path = resolve_ckpt_path(cfg)
    try:
        if cfg.get("train", True):
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
        checkpoint = next((cb for cb in trainer.callbacks if isinstance(cb, ModelCheckpoint)), None)
        best_path = checkpoint.best_model_path if checkpoint is not None and checkpoint.best_model_path else None
        val_metrics = _floats(trainer.callback_metrics)
        if checkpoint is not None and checkpoint.best_model_score is not None and checkpoint.monitor:
            val_metrics[checkpoint.monitor] = float(checkpoint.best_model_score)
        test_metrics: dict[str, float] = {}
        if cfg.get("test", True):
            if best_path is None:
                log.warning("No best checkpoint was saved; testing the current weights")
            trainer.test(model, datamodule=datamodule, ckpt_path=best_path if cfg.get("train", True) else ckpt_path)
            test_metrics = _floats(trainer.callback_metrics)
    finally:
        sync_commands = [lg.sync_command() for lg in loggers if isinstance(lg, ResilientWandbLogger)]
        if any(isinstance(lg, ResilientWandbLogger) for lg in loggers) and trainer.is_global_zero:
            import wandb

            wandb.finish()

    optimized = cfg.get("optimized_metric")
    value = val_metrics.get(optimized) if optimized else None
    if trainer.is_global_zero:
        results = {key: test_metrics.get(key) for key in TEST_KEYS}
        results.update({k: v for k, v in test_metrics.items() if k.startswith("test/") and k.count("/") == 2})
        results.update(
            {
                "ckpt_path": best_path,
                "run_dir": str(out),
                "world_size": trainer.world_size,
                "global_step": trainer.global_step,
                "epochs": trainer.current_epoch,
                "val/psnr": val_metrics.get("val/psnr"),
                "val/psnr_noisy": val_metrics.get("val/psnr_noisy"),
                "optimized_metric": optimized,
                "optimized_value": value,
            }
        )
        write_json(out / "results.json", results)
        if all(results.get(k) is not None for k in TEST_KEYS):
            rows = method_rows(results, cfg.model.net._target_.rsplit(".", 1)[-1])
            print_table(f"test results ({out})", rows, ("method", "psnr", "ssim", "psnr_gain", "ssim_gain"))
        log.info("Results: %s", out / "results.json")
        for command in filter(None, sync_commands):
            log.info("W&B ran offline; upload this run with: %s", command)
    return value


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def write_submissions(datamodule: DenoiseDataModule, net: torch.nn.Module, device: torch.device, out: Path) -> list:
    """Benchmark files of datasets that define them (SIDD: SubmitSrgb.csv / .mat) into the run directory."""

    def denoise_array(image: Any) -> Any:
        x = torch.from_numpy(image).permute(2, 0, 1)[None].to(device)
        return run_padded(net, x)[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy()

    files = []
    for layout in getattr(datamodule, "layouts", {}).values():
        if hasattr(layout, "submit"):
            files += layout.submit(out, denoise_array)
    for path in files:
        log.info("Wrote benchmark submission file %s", path)
    return files


@torch.no_grad()
def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Test a checkpoint (Lightning or plain state dict) on the data's test split; write results files."""
    OmegaConf.resolve(cfg)
    if not cfg.get("ckpt_path"):
        raise ValueError("ckpt_path is required: python evaluate.py ckpt_path=PATH (a .ckpt or a state dict)")
    out = run_dir()
    datamodule: DenoiseDataModule = instantiate(cfg.data)
    net_spec = cfg.model.net if cfg.get("model") else None
    net, spec = load_network(cfg.ckpt_path, OmegaConf.to_container(net_spec) if net_spec is not None else None)
    channels = spec.get("in_channels")
    if channels is not None and channels != datamodule.channels:
        raise ValueError(
            f"ckpt_path={cfg.ckpt_path} expects {channels}-channel images but the data gives {datamodule.channels}; "
            f"set data.grayscale={'true' if channels == 1 else 'false'}"
        )
    device = _device(cfg.get("device", "auto"))
    net.to(device)
    datamodule.setup("test")
    dataset = datamodule.dataset("test")
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, num_workers=datamodule.num_workers)
    method = spec["_target_"].rsplit(".", 1)[-1]

    per_image: list[dict[str, Any]] = []
    seconds, megapixels = 0.0, 0.0
    columns = [TextColumn("[bold]evaluate"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("images", total=len(dataset))
        for batch in loader:
            noisy, clean = batch["noisy"].to(device), batch["clean"].to(device)
            start = time.perf_counter()
            denoised = run_padded(net, noisy)
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds += time.perf_counter() - start
            megapixels += noisy.shape[-1] * noisy.shape[-2] / 1e6
            values = image_metrics(denoised.float().clamp(0, 1), noisy, clean)
            dataset = batch["dataset"][0] if "dataset" in batch else ""
            per_image.append(
                {"image": batch["name"][0], "dataset": dataset, **{k: float(v[0]) for k, v in values.items()}}
            )
            progress.advance(task)

    if not per_image:
        raise ValueError("the test split is empty")
    keys = ("psnr", "ssim", "psnr_noisy", "ssim_noisy")
    metrics = {f"test/{k}": sum(r[k] for r in per_image) / len(per_image) for k in keys}
    rows = method_rows(metrics, method, images=len(per_image), seconds_per_megapixel=seconds / max(megapixels, 1e-9))
    results = {**metrics, "ckpt_path": str(cfg.ckpt_path), "run_dir": str(out), "images": len(per_image)}
    datasets = sorted({r["dataset"] for r in per_image if r["dataset"]})
    if len(datasets) > 1:  # several datasets (data=real): each one's own scores too
        for dataset in datasets:
            rows_of = [r for r in per_image if r["dataset"] == dataset]
            results.update({f"test/{dataset}/{k}": sum(r[k] for r in rows_of) / len(rows_of) for k in keys})
    results["method"] = method
    write_json(out / "results.json", results)
    write_csv(out / "results.csv", rows, RESULT_COLUMNS)
    write_markdown(out / "results.md", f"{method} on the test split ({len(per_image)} images)", rows, RESULT_COLUMNS)
    write_csv(out / "per_image.csv", per_image, ["image", "dataset", "psnr", "ssim", "psnr_noisy", "ssim_noisy"])
    results["submissions"] = [str(p) for p in write_submissions(datamodule, net, device, out)]
    print_table(f"evaluate ({out})", rows, ("method", "psnr", "ssim", "psnr_gain", "seconds_per_megapixel", "images"))
    if not all(math.isfinite(results[k]) for k in TEST_KEYS):
        log.warning("some metrics are not finite: %s", {k: results[k] for k in TEST_KEYS})
    return results
