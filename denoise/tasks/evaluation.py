"""The evaluation job: every chosen filter and checkpoint on the same test images, scored, timed, tabled and
pictured; benchmark submissions for the datasets that have one."""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import Logger, TensorBoardLogger, WandbLogger
from omegaconf import DictConfig, OmegaConf

from denoise.data.datamodule import DenoiseDataModule
from denoise.data.files import remove_stale_partials
from denoise.data.io import array2tensor, read_image, single2uint, tensor2single
from denoise.evaluation.comparison import (
    PER_IMAGE_COLUMNS,
    Comparison,
    Method,
    compare,
    filter_method,
    mean_scores,
    summary_rows,
)
from denoise.evaluation.metrics import Convention
from denoise.evaluation.report import (
    RESULT_COLUMNS,
    image_grid,
    markdown_table,
    plot_psnr_ssim,
    print_table,
    write_csv,
    write_json,
    write_markdown,
)
from denoise.inference import Inference, device_name, resolve_device
from denoise.tasks.compose import instantiate, instantiate_group, run_dir
from denoise.tasks.methods import checkpoint_paths, filter_names, filter_sigma, load_models
from denoise.tasks.results import ON_VALIDATION, run_record
from denoise.tasks.rundir import admit_run, refuse_finished_run
from denoise.tasks.schema import check_mandatory, check_types
from denoise.tasks.wrapper import task_wrapper
from denoise.training.loggers import ResilientWandbLogger

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


@dataclass
class Setup:
    """What an evaluation compares: the data, the device, the filters and networks as methods, the loggers."""

    datamodule: DenoiseDataModule
    device: torch.device
    filters: list[str]
    models: list[Method]
    methods: list[Method]
    sigma: float | None
    loggers: list[Logger]
    settings: Inference


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
    setup = prepare(cfg)
    admit_run()  # every check passed (the data, the checkpoints): the run's .hydra/ and log are written from here on
    remove_stale_partials(out)
    count, batches = setup.datamodule.evaluation_batches("test", setup.device.type)
    convention = Convention.of(cfg.get("metrics"))
    comparison = compare(setup.methods, batches, count, setup.device, int(cfg.get("grid_images", 3)), convention)
    if not comparison.per_image:
        raise ValueError("the test split is empty")
    rows = summary_rows(comparison, setup.methods)
    results = evaluation_results(setup, comparison, rows, convention, out)
    text = title(setup, rows, convention)
    pictures = write_tables_and_pictures(out, rows, comparison, text, convention)
    submissions = []
    for model in setup.models:
        target = out if len(setup.models) == 1 else out / "submissions" / _safe_name(model.label)
        submissions += write_benchmarks(setup.datamodule, model, setup.device, target)
    results["submissions"] = [str(p) for p in submissions]
    write_json(out / "results.json", results)
    report(cfg, setup.loggers, rows, pictures, out, len(comparison.grids))
    return results


def prepare(cfg: DictConfig) -> Setup:
    """The filters and checkpoints asked for (at least one), the data (with clean images to score against), the
    networks loaded and checked against its channels, every method with a label of its own."""
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
    settings = Inference.of(OmegaConf.to_container(cfg.inference, resolve=True) if cfg.get("inference") else None)
    models = load_models(cfg, datamodule, device, settings)
    if models:  # noise-level networks get the data's known level (synthetic noise) where it has one
        datamodule.serve({"noisy", "clean", "noise_level"}, "evaluation")
    sigma = filter_sigma(cfg, datamodule)
    methods = [filter_method(name, cfg.filter[name], sigma) for name in names] + models
    labels = [m.label for m in methods]
    if len(set(labels)) != len(labels):
        raise ValueError(f"two methods share a label: {labels}; change filter.<name>.label")
    loggers: list[Logger] = instantiate_group(cfg.get("logger"), "logger")  # built now, started at the end
    return Setup(datamodule, device, names, models, methods, sigma, loggers, settings)


def title(setup: Setup, rows: list[dict[str, Any]], convention: Convention) -> str:
    sigma_text = "estimated per image" if setup.sigma is None else f"{setup.sigma * 255:g}/255"
    text = f"the noisy input and {len(setup.methods)} methods on {rows[0]['images']} test images (filter sigma: "
    text += f"{sigma_text}; {convention.describe(setup.datamodule.channels)})"
    if setup.models and setup.settings.precision != "fp32":
        text += f"; networks run in {setup.settings.precision}"
    if setup.datamodule.test_is_validation():
        text += f"; {ON_VALIDATION}"
    return text


def evaluation_results(setup: Setup, comparison: Comparison, rows: list[dict[str, Any]], convention: Convention,
                       out: Path) -> dict[str, Any]:  # fmt: skip
    """evaluate.py's results.json, in the one schema (:func:`denoise.tasks.results.run_record`): every method's
    scores, each dataset's where there are several, and with one network its scores as train.py writes them."""
    per_image, models = comparison.per_image, setup.models
    datasets = sorted({r["dataset"] for r in per_image if r["dataset"]})
    by_dataset = {
        dataset: {m.label: mean_scores([r for r in per_image if r["dataset"] == dataset and r["method"] == m.label])
                  for m in setup.methods}
        for dataset in datasets
    } if len(datasets) > 1 else {}  # fmt: skip
    test_scores, single = {}, {}
    if len(models) == 1:  # one network: its scores under the same keys as train.py's results.json
        only = models[0].label
        test_scores = {f"test/{k}": v for k, v in mean_scores([r for r in per_image if r["method"] == only]).items()}
        for dataset, scores in by_dataset.items():
            test_scores.update({f"test/{dataset}/{k}": v for k, v in scores[only].items()})
        single = {"method": only, "ckpt_path": models[0].source}
    results = run_record(
        out, asdict(convention), setup.settings.precision, device_name(setup.device), test_scores,
        one_network=len(models) == 1, images=rows[0]["images"],
        noisy={"psnr": rows[0]["psnr"], "ssim": rows[0]["ssim"]},
        methods={row["method"]: {k: v for k, v in row.items() if k != "method"} for row in rows[1:]},
        filters=setup.filters, ckpt_paths=[m.source for m in models], model_labels={m.label: m.source for m in models},
        filter_sigma=setup.sigma, test_is_validation=setup.datamodule.test_is_validation(), **single,
    )  # fmt: skip
    if by_dataset:  # several datasets (data=real): each one's own scores too
        results["datasets"] = by_dataset
    return results


def write_tables_and_pictures(out: Path, rows: list[dict[str, Any]], comparison: Comparison, text: str,
                              convention: Convention) -> dict[str, Path]:  # fmt: skip
    """results.csv/.md, per_image.csv, the PSNR/SSIM chart and one grid per image case; returns the pictures."""
    write_csv(out / "results.csv", [{**r, "convention": convention.describe()} for r in rows],
              (*RESULT_COLUMNS, "convention"))  # fmt: skip
    write_markdown(out / "results.md", text, rows, RESULT_COLUMNS)
    write_csv(out / "per_image.csv", comparison.per_image, PER_IMAGE_COLUMNS)
    pictures = {"psnr_ssim": plot_psnr_ssim(out / "psnr_ssim.png", rows, text)}
    several = len({r["dataset"] for r in comparison.per_image if r["dataset"]}) > 1
    for case in comparison.grids:
        stem = f"{case.dataset}_{_safe_name(case.image)}" if several else _safe_name(case.image)
        caption = f"{case.dataset + ': ' if case.dataset else ''}{case.image} (zoom: red box)"
        panels = case.ordered([row["method"] for row in rows[1:]])  # best first, as in the table
        pictures[f"grid/{stem}"] = image_grid(out / f"grid_{stem}.png", panels, case.box, caption)
    return pictures


def report(cfg: DictConfig, loggers: list[Logger], rows: list[dict[str, Any]], pictures: dict[str, Path], out: Path,
           grids: int) -> None:  # fmt: skip
    """The loggers get the config, the table and the pictures; the terminal the table and where it all is."""
    try:
        for logger in loggers:
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        log_comparison(loggers, rows, pictures)
    finally:  # W&B itself is finished by the task wrapper
        sync_commands = [lg.sync_command() for lg in loggers if isinstance(lg, ResilientWandbLogger)]
    print_table(f"evaluate ({out})", rows, ("method", "kind", "psnr", "ssim", "psnr_gain", "seconds_per_megapixel"))
    log.info("Results: %s (results.csv/.md, per_image.csv, psnr_ssim.png, %d grids)", out, grids)
    for command in filter(None, sync_commands):
        log.info("W&B ran offline; upload this run with: %s", command)
    bad = {row["method"]: row["psnr"] for row in rows if not math.isfinite(row["psnr"])}
    if bad:
        log.warning("some PSNR values are not finite: %s", bad)
