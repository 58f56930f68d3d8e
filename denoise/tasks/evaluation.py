"""The evaluation job: every chosen filter and checkpoint on the same test images, scored, timed, tabled and
pictured; benchmark submissions for the datasets that have one."""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import Logger, TensorBoardLogger, WandbLogger
from omegaconf import DictConfig, OmegaConf

from denoise.checkpoint import load_network
from denoise.comparison import (
    PER_IMAGE_COLUMNS,
    Method,
    compare,
    filter_method,
    mean_scores,
    model_method,
    summary_rows,
    unique_labels,
)
from denoise.data.datamodule import DenoiseDataModule
from denoise.data.io import array2tensor, read_image, single2uint, tensor2single
from denoise.inference import Inference, prepare_network, resolve_device, sigma_value
from denoise.loggers import ResilientWandbLogger
from denoise.metrics import Convention
from denoise.provenance import provenance
from denoise.report import (
    RESULT_COLUMNS,
    image_grid,
    markdown_table,
    plot_psnr_ssim,
    print_table,
    write_csv,
    write_json,
    write_markdown,
)
from denoise.tasks.compose import check_mandatory, instantiate, instantiate_group, run_dir
from denoise.tasks.rundir import refuse_finished_run
from denoise.tasks.schema import check_types
from denoise.tasks.wrapper import task_wrapper

log = logging.getLogger(__name__)


def write_benchmarks(datamodule: DenoiseDataModule, method: Method, device: torch.device, out: Path) -> list[Path]:
    """Benchmark files of the datasets that have a benchmark (SIDD: SubmitSrgb.csv / .mat) into ``out``: its
    noisy blocks denoised exactly as the method was scored (the same tiling, ensemble and precision), rounded
    to 8 bits, and the seconds per megapixel the method took."""
    files: list[Path] = []
    for name, benchmark in datamodule.benchmarks().items():
        noisy = benchmark.benchmark()
        if noisy is None:
            continue
        denoised = np.empty(noisy.shape, dtype=np.uint8)
        seconds = 0.0
        for index in np.ndindex(*noisy.shape[:2]):
            x = array2tensor(noisy[index])[None].to(device)
            start = time.perf_counter()
            result = method.run(x)
            seconds += time.perf_counter() - start
            denoised[index] = single2uint(tensor2single(result[0].clamp(0, 1)))
        megapixels = np.prod(noisy.shape[:4]) / 1e6
        files += benchmark.write_benchmark(out, denoised, seconds / float(megapixels))
        log.info("Wrote the %s benchmark submission: %s", name, ", ".join(str(p) for p in files))
    return files


def filter_sigma(cfg: DictConfig, datamodule: DenoiseDataModule) -> float | None:
    """The noise level handed to the filters ([0, 1] scale), or None for a per-image estimate."""
    setting = cfg.get("filter_sigma", "auto")
    if setting in (None, "auto"):
        return datamodule.noise_sigma
    if setting == "estimate":
        return None
    value = sigma_value(setting)
    if value is None:
        raise ValueError(f"filter_sigma={setting!r}: expected auto, estimate, or a number >= 0 on the 0-255 scale")
    return value / 255.0


def filter_names(cfg: DictConfig) -> list[str]:
    """``filters=[bm3d,nlm]`` or ``filters=all``, checked against the configs under ``filter``."""
    chosen = cfg.get("filters") or []
    chosen = [chosen] if isinstance(chosen, str) else [str(name) for name in chosen]
    available = list(cfg.get("filter") or {})
    if "all" in chosen:
        from denoise.filters import FILTER_NAMES  # here, not at import: train.py never loads bm3d and OpenCV filters
        from denoise.resolvers import installed

        names = [n for n in FILTER_NAMES if n in available] + [n for n in available if n not in FILTER_NAMES]
        if "bm3d" in names and not installed("bm3d"):  # an extra (non-commercial licence): all = all installed
            log.warning("filters=all without BM3D: the bm3d package is not installed (pip install 'denoise[bm3d]'; "
                        "free for non-commercial use only)")  # fmt: skip
            names.remove("bm3d")
        return names
    for name in chosen:
        if name not in available:
            raise ValueError(f"filters: unknown filter {name!r}; expected names from {available} (conf/filter), or all")
    if "bm3d" in chosen:
        from denoise.resolvers import installed

        if not installed("bm3d"):
            raise ValueError("filters=[bm3d] needs the bm3d package, an optional part (free for non-commercial use "
                             "only): pip install 'denoise[bm3d]'")  # fmt: skip
    return list(dict.fromkeys(chosen))


def checkpoint_paths(cfg: DictConfig) -> list[tuple[str, str]]:
    """``(config key, path)`` of ``ckpt_path`` (one) and ``ckpt_paths`` (a list), in that order."""
    paths = [("ckpt_path", str(cfg.ckpt_path))] if cfg.get("ckpt_path") else []
    more = cfg.get("ckpt_paths") or []
    more = [more] if isinstance(more, str) else list(more)
    return paths + [(f"ckpt_paths[{i}]", str(path)) for i, path in enumerate(more)]


def load_models(cfg: DictConfig, datamodule: DenoiseDataModule, device: torch.device) -> list[Method]:
    """Every checkpoint as a method, checked against the data's channels."""
    net_spec = OmegaConf.to_container(cfg.model.net) if cfg.get("model") else None
    settings = Inference.of(OmegaConf.to_container(cfg.inference, resolve=True) if cfg.get("inference") else None)
    loaded = []
    for key, path in checkpoint_paths(cfg):
        net, spec = load_network(path, net_spec, key=key)
        prepare_network(net, settings, spec.get("in_channels"))  # TLC, when asked for
        channels = spec.get("in_channels")
        if channels is not None and channels != datamodule.channels:
            raise ValueError(
                f"{key}={path} expects {channels}-channel images but the data gives {datamodule.channels}; "
                f"set data.grayscale={'true' if channels == 1 else 'false'}"
            )
        loaded.append((spec["_target_"].rsplit(".", 1)[-1], path, net.to(device)))
    labels = unique_labels([name for name, _, _ in loaded], [path for _, path, _ in loaded])
    return [model_method(label, net, path, settings) for label, (_, path, net) in zip(labels, loaded, strict=True)]


def _safe_name(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", Path(name).stem).strip("_") or "image"


def log_comparison(loggers: list[Logger], rows: list[dict[str, Any]], pictures: dict[str, Path]) -> None:
    """The results table and the pictures to W&B (a Table and Images) or TensorBoard (text and images)."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            import wandb

            data = [[row.get(c) for c in RESULT_COLUMNS] for row in rows]
            table = wandb.Table(columns=list(RESULT_COLUMNS), data=data)
            payload: dict[str, Any] = {"evaluate/results": table}
            payload.update({f"evaluate/{name}": wandb.Image(str(path)) for name, path in pictures.items()})
            logger.experiment.log(payload)
            for row in rows:
                logger.experiment.summary[f"{row['method']}/psnr"] = row["psnr"]
                logger.experiment.summary[f"{row['method']}/ssim"] = row["ssim"]
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_text("evaluate/results", markdown_table(rows, RESULT_COLUMNS))
            for name, path in pictures.items():
                image = read_image(path, channels=3)
                logger.experiment.add_image(f"evaluate/{name}", image, dataformats="HWC")
            logger.experiment.flush()


@task_wrapper
@torch.no_grad()
def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Every chosen filter and checkpoint on the data's test split: results.json/.csv/.md, per_image.csv,
    psnr_ssim.png and image grids in the run directory (and the logger, if one is configured)."""
    check_mandatory(cfg, "evaluate.py")
    check_types(cfg, "evaluate.py")
    OmegaConf.resolve(cfg)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, verbose=False)
    out = run_dir()
    refuse_finished_run(out, cfg)
    names = filter_names(cfg)
    if not checkpoint_paths(cfg) and not names:
        raise ValueError(
            "nothing to evaluate: give ckpt_path=PATH (or ckpt_paths=[A,B]) and/or filters=[bm3d,...] or filters=all"
        )
    datamodule: DenoiseDataModule = instantiate(cfg.data)
    if not datamodule.has_clean:
        raise ValueError(
            f"evaluate.py scores outputs against clean images, and {type(datamodule).__name__} (data=noisy_folder) "
            "has none: denoise the images with `denoise-predict CKPT DIR -o OUT`, or see the noise levels estimated "
            "without ground truth (val/noise_in, val/noise_out) in the training run's results.json"
        )
    device = resolve_device(cfg.get("device", "auto"))
    models = load_models(cfg, datamodule, device)
    if models:  # noise-level networks get the data's known level (synthetic noise) where it has one
        datamodule.serve({"noisy", "clean", "noise_level"}, "evaluation")
    sigma = filter_sigma(cfg, datamodule)
    methods = [filter_method(name, cfg.filter[name], sigma) for name in names] + models
    labels = [m.label for m in methods]
    if len(set(labels)) != len(labels):
        raise ValueError(f"two methods share a label: {labels}; change filter.<name>.label")
    loggers: list[Logger] = instantiate_group(cfg.get("logger"), "logger")  # built now, started at the end

    count, batches = datamodule.evaluation_batches("test", device.type)
    convention = Convention.of(cfg.get("metrics"))
    comparison = compare(methods, batches, count, device, int(cfg.get("grid_images", 3)), convention)
    if not comparison.per_image:
        raise ValueError("the test split is empty")
    rows = summary_rows(comparison, methods)
    count = rows[0]["images"]
    sigma_text = "estimated per image" if sigma is None else f"{sigma * 255:g}/255"
    title = f"{len(methods)} methods on {count} test images (filter sigma: {sigma_text}; {convention.describe()})"
    precision = str((cfg.get("inference") or {}).get("precision", "fp32"))
    if models and precision != "fp32":
        title += f"; networks run in {precision}"

    results: dict[str, Any] = {
        "run_dir": str(out),
        "images": count,
        "noisy": {"psnr": rows[0]["psnr"], "ssim": rows[0]["ssim"]},
        "methods": {row["method"]: {k: v for k, v in row.items() if k != "method"} for row in rows[1:]},
        "filters": names,
        "ckpt_paths": [m.source for m in models],
        "model_labels": {m.label: m.source for m in models},
        "filter_sigma": sigma,
        "inference_precision": str((cfg.get("inference") or {}).get("precision", "fp32")),
        "metrics": asdict(convention),
        **provenance(),
    }
    datasets = sorted({r["dataset"] for r in comparison.per_image if r["dataset"]})
    if len(datasets) > 1:  # several datasets (data=real): each one's own scores too
        results["datasets"] = {
            dataset: {
                method.label: mean_scores(
                    [r for r in comparison.per_image if r["dataset"] == dataset and r["method"] == method.label]
                )
                for method in methods
            }
            for dataset in datasets
        }
    if len(models) == 1:  # one network: its scores under the same keys as train.py's results.json
        only = models[0].label
        mine = [r for r in comparison.per_image if r["method"] == only]
        results.update({f"test/{k}": v for k, v in mean_scores(mine).items()})
        for dataset in datasets if len(datasets) > 1 else []:
            scores = results["datasets"][dataset][only]
            results.update({f"test/{dataset}/{k}": v for k, v in scores.items()})
        results.update({"method": only, "ckpt_path": models[0].source})

    write_csv(
        out / "results.csv", [{**r, "convention": convention.describe()} for r in rows], (*RESULT_COLUMNS, "convention")
    )
    write_markdown(out / "results.md", title, rows, RESULT_COLUMNS)
    write_csv(out / "per_image.csv", comparison.per_image, PER_IMAGE_COLUMNS)
    pictures = {"psnr_ssim": plot_psnr_ssim(out / "psnr_ssim.png", rows, title)}
    for case in comparison.grids:
        stem = _safe_name(case.image) if len(datasets) <= 1 else f"{case.dataset}_{_safe_name(case.image)}"
        caption = f"{case.dataset + ': ' if case.dataset else ''}{case.image} (zoom: red box)"
        panels = case.ordered([row["method"] for row in rows[1:]])  # best first, as in the table
        pictures[f"grid/{stem}"] = image_grid(out / f"grid_{stem}.png", panels, case.box, caption)
    submissions = []
    for model in models:
        target = out if len(models) == 1 else out / "submissions" / _safe_name(model.label)
        submissions += write_benchmarks(datamodule, model, device, target)
    results["submissions"] = [str(p) for p in submissions]
    write_json(out / "results.json", results)
    try:
        for logger in loggers:
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        log_comparison(loggers, rows, pictures)
    finally:  # W&B itself is finished by the task wrapper
        sync_commands = [lg.sync_command() for lg in loggers if isinstance(lg, ResilientWandbLogger)]
    print_table(f"evaluate ({out})", rows, ("method", "kind", "psnr", "ssim", "psnr_gain", "seconds_per_megapixel"))
    log.info("Results: %s (results.csv/.md, per_image.csv, psnr_ssim.png, %d grids)", out, len(comparison.grids))
    for command in filter(None, sync_commands):
        log.info("W&B ran offline; upload this run with: %s", command)
    bad = {row["method"]: row["psnr"] for row in rows if not math.isfinite(row["psnr"])}
    if bad:
        log.warning("some PSNR values are not finite: %s", bad)
    return results
