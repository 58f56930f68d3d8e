"""The two jobs, ``train(cfg)`` and ``evaluate(cfg)``: build everything from the composed config and run it.

Only this module and the entry points know Hydra; the data, models and the LightningModule receive
plain values.
"""

from __future__ import annotations

import logging
import math
import os
import re
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
from lightning.pytorch.loggers import Logger, TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf, open_dict

from denoise.checkpoint import load_network, safe_load
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
from denoise.config import to_plain
from denoise.data.datamodule import DenoiseDataModule
from denoise.data.io import read_image
from denoise.inference import resolve_device
from denoise.loggers import ResilientWandbLogger, finish_wandb
from denoise.precision import check_precision
from denoise.preemption import PREEMPTED_EXIT_CODE, PreemptedExit
from denoise.report import (
    RESULT_COLUMNS,
    image_grid,
    markdown_table,
    method_rows,
    plot_psnr_ssim,
    print_table,
    write_csv,
    write_json,
    write_markdown,
)
from denoise.runlock import RunLock, refuse_if_busy

log = logging.getLogger(__name__)
# Lightning's own use of a torch API deprecated in torch 2.10+; nothing a user can act on
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
# Lightning's hint whenever `srun` is installed; on a real SLURM job it detects the environment itself
warnings.filterwarnings("ignore", message=r"The `srun` command is available on your system but is not used")
TEST_KEYS = ("test/psnr", "test/ssim", "test/psnr_noisy", "test/ssim_noisy")


def instantiate(config: Any, **kwargs: Any) -> Any:
    """Hydra's instantiate, but our own config errors (which name the key or file) surface unwrapped."""
    try:
        return hydra_instantiate(config, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, ValueError | OSError | TypeError):
            raise err.__cause__ from None
        raise


#: the config tree of this checkout
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def model_specs(
    conf_dir: Path = CONF_DIR, channels: int = 3, names: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    """The network spec of ``conf/model/<name>.yaml`` (every one by default), composed by Hydra with
    ``data.channels`` set, as ``train.py model=<name>`` would build it."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    available = sorted(p.stem for p in (conf_dir / "model").glob("*.yaml"))
    for name in names or []:
        if name not in available:
            raise ValueError(f"model={name!r} is unknown; expected one of {available} (conf/model)")
    specs = {}
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(conf_dir.resolve())):
        for name in names or available:
            cfg = compose(config_name="train", overrides=[f"model={name}", f"data.grayscale={channels == 1}"])
            specs[name] = OmegaConf.to_container(cfg.model.net, resolve=True)
    GlobalHydra.instance().clear()
    return specs


def compose_config(config_name: str, overrides: list[str], out_dir: Path) -> DictConfig:
    """``conf/<config_name>.yaml`` composed as its entry point would, with the run directory at ``out_dir``: for
    benchmarks and scripts that call :func:`train` / :func:`evaluate` without Hydra's command line."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = compose(config_name=config_name, overrides=list(overrides), return_hydra_config=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(out_dir)
        cfg.paths.log_dir = str(out_dir / "logs")
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


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


def build_trainer(trainer_cfg: DictConfig, callbacks: list[Callback], loggers: list[Logger]) -> L.Trainer:
    """The Lightning Trainer from ``trainer``, less the keys that are ours (``channels_last`` goes to the model)."""
    options = {k: v for k, v in trainer_cfg.items() if k != "channels_last"}
    if options.get("sync_batchnorm") and options.get("accelerator") == "cpu":
        raise ValueError(
            "trainer.sync_batchnorm=true needs GPUs (PyTorch's SyncBatchNorm is CUDA-only); "
            "set it false with trainer.accelerator=cpu"
        )
    return instantiate(OmegaConf.create(options), callbacks=callbacks, logger=loggers or False)


def find_last_checkpoint(log_dir: Path, task_name: str, exclude: Path | None = None) -> Path:
    """``ckpt_path=last``: the most recently written ``last.ckpt`` among earlier runs of this task
    (single runs, multirun jobs and SLURM jobs alike)."""
    task_dir = log_dir / task_name
    patterns = ("runs/*", "multiruns/*/*", "slurm/*/*")
    found = [p for pattern in patterns for p in task_dir.glob(f"{pattern}/checkpoints/last.ckpt")]
    found = [p for p in found if exclude is None or exclude.resolve() not in p.resolve().parents]
    if not found:
        raise FileNotFoundError(
            f"ckpt_path=last: no earlier run of task '{task_name}' has checkpoints/last.ckpt under {task_dir} "
            "(looked in runs/*/, multiruns/*/*/ and slurm/*/*/)"
        )
    return max(found, key=lambda p: p.stat().st_mtime)


def checkpoint_run_dir(ckpt_path: Path) -> Path | None:
    """The run directory a checkpoint belongs to (``<run>/checkpoints/x.ckpt`` with ``<run>/.hydra``), if any."""
    run = ckpt_path.resolve().parent.parent
    return run if ckpt_path.resolve().parent.name == "checkpoints" and (run / ".hydra").is_dir() else None


def wandb_run_id(run: Path) -> str | None:
    """The W&B run id recorded in a run directory (``wandb/[offline-]run-<time>-<id>``), newest first."""
    runs = sorted((run / "wandb").glob("*run-*-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    return runs[0].name.rsplit("-", 1)[-1] if runs else None


def resolve_resume(cfg: DictConfig) -> tuple[str | None, Path]:
    """The checkpoint to resume from and the run directory to continue in.

    ``ckpt_path=last`` (the newest run of this task) and an explicit path inside a run's ``checkpoints/``
    continue that run: same directory, same W&B run id. With no ``ckpt_path``, a run directory that already
    holds ``checkpoints/last.ckpt`` is a requeued SLURM job, which resumes from it. Every checkpoint is
    validated as safe (weights_only) before Lightning touches it.
    """
    here = run_dir()
    ckpt_path = cfg.get("ckpt_path")
    training = bool(cfg.get("train", True))
    if not ckpt_path:
        # Lightning's SLURM requeue writes hpc_ckpt_<n>.ckpt, our preemption callback last.ckpt: newest wins
        saved = [p for p in [here / "checkpoints" / "last.ckpt", *here.glob("hpc_ckpt_*.ckpt")] if p.is_file()]
        if not training or not saved:
            return None, here
        ckpt_path = str(max(saved, key=lambda p: p.stat().st_mtime))
        log.info("This run directory already holds %s (a requeued job): resuming from it", ckpt_path)
    elif ckpt_path == "last":
        ckpt_path = str(find_last_checkpoint(Path(cfg.paths.log_dir), cfg.task_name, exclude=here))
    checkpoint = safe_load(ckpt_path)
    check_resume_fits(checkpoint, cfg, str(cfg.get("ckpt_path") or ckpt_path))
    # testing a checkpoint (train=false) writes its results here, not into the run it came from
    run = (checkpoint_run_dir(Path(ckpt_path)) if training else None) or here
    if training and launch_rank() == 0 and run.resolve() != here.resolve():
        # the other ranks of this job follow rank 0, which holds the lock by the time they start
        refuse_if_busy(run, f"ckpt_path={cfg.get('ckpt_path')}")
    log.info("Resuming from %s in %s", ckpt_path, run)
    if run.resolve() != here.resolve():
        log.info("This launch's own config and log stay in %s", here)
    return str(ckpt_path), run


def launch_rank() -> int:
    """This process's global rank as its launcher set it (0 for a single process; Lightning's DDP children,
    SLURM tasks and torchrun set it before the Trainer exists)."""
    for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        if os.environ.get(key) is not None:
            return int(os.environ[key])
    return 0


def check_resume_fits(checkpoint: dict[str, Any], cfg: DictConfig, ckpt_key: str) -> None:
    """A checkpoint resumes only into the network it was trained as: a clear error naming what differs and the
    setting that fixes it, instead of PyTorch's raw "size mismatch" from deep inside Lightning."""
    saved = (checkpoint.get("hyper_parameters") or {}).get("net")
    if not isinstance(saved, dict) or not cfg.get("model"):
        return
    wanted = OmegaConf.to_container(cfg.model.net, resolve=True)
    if saved.get("in_channels") is not None and saved.get("in_channels") != wanted.get("in_channels"):
        gray = saved["in_channels"] == 1
        raise ValueError(
            f"ckpt_path={ckpt_key} was trained on {saved['in_channels']}-channel images but data gives "
            f"{wanted.get('in_channels')}; set data.grayscale={'true' if gray else 'false'}"
        )
    shared = sorted(set(saved) & set(wanted))  # a key on one side only keeps its default
    differing = {k: (saved[k], wanted[k]) for k in shared if saved[k] != wanted[k]}
    if differing:
        settings = " ".join(f"model.net.{k}={v[0]}" for k, v in differing.items() if k != "_target_")
        target = saved.get("_target_", "?").rsplit(".", 1)[-1]
        raise ValueError(
            f"ckpt_path={ckpt_key} holds {target} with "
            + ", ".join(f"{k}={a!r}" for k, (a, _) in differing.items())
            + " but this run builds "
            + ", ".join(f"{k}={b!r}" for k, (_, b) in differing.items())
            + f"; resume with the model it was trained with ({settings or 'its model=<config>'})"
        )


def continue_run(cfg: DictConfig, run: Path) -> None:
    """Point every output of ``cfg`` (checkpoints, logs, results) at ``run``, keeping its W&B run id."""
    with open_dict(cfg):
        cfg.paths.output_dir = str(run)
        wandb_cfg = (cfg.get("logger") or {}).get("wandb")
        if wandb_cfg is not None and not wandb_cfg.get("id"):
            run_id = wandb_run_id(run)
            if run_id is not None:
                wandb_cfg.id = run_id
                wandb_cfg.resume = "allow"
                log.info("Continuing W&B run %s", run_id)


def _floats(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, torch.Tensor | float | int)}


def train(cfg: DictConfig) -> float | None:
    """Fit, test the best checkpoint, write results.json, print a table; return the metric sweepers optimize.

    The run directory is locked for the whole run (:mod:`denoise.runlock`), so no second process resumes into
    it while this one lives."""
    ckpt_path, out = resolve_resume(cfg)
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
        cfg.model, inference=to_plain(cfg.get("inference")), channels_last=channels_last
    )
    network_channels = model.hparams.net.get("in_channels")
    if network_channels is not None and network_channels != datamodule.channels:
        raise ValueError(
            f"model.net.in_channels={network_channels} but the data gives {datamodule.channels}-channel images "
            f"(data.grayscale={datamodule.grayscale}); leave model.net.in_channels at ${{data.channels}}"
        )
    loggers: list[Logger] = instantiate_group(cfg.get("logger"), "logger")
    callbacks: list[Callback] = instantiate_group(cfg.get("callbacks"), "callbacks")
    if not loggers:  # Lightning refuses an LR monitor without a logger
        callbacks = [cb for cb in callbacks if not isinstance(cb, LearningRateMonitor)]
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
            trainer.test(
                model,
                datamodule=datamodule,
                ckpt_path=best_path if cfg.get("train", True) else ckpt_path,
                weights_only=True,
            )
            test_metrics = _floats(trainer.callback_metrics)
    finally:
        sync_commands = [lg.sync_command() for lg in loggers if isinstance(lg, ResilientWandbLogger)]
        if any(isinstance(lg, ResilientWandbLogger) for lg in loggers) and trainer.is_global_zero:
            finish_wandb()

    optimized = cfg.get("optimized_metric")
    value = val_metrics.get(optimized) if optimized else None
    if optimized and value is None and cfg.get("train", True):
        log.warning(
            "optimized_metric=%s was never logged (did validation run? an epoch needs at least one batch of "
            "data.batch_size); a sweeper gets no value for this run",
            optimized,
        )
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
                "fit_seconds": fit_seconds,
                "val/psnr": val_metrics.get("val/psnr"),
                "val/psnr_noisy": val_metrics.get("val/psnr_noisy"),
                "precision": str(cfg.trainer.precision),
                "eval_precision": str(model.hparams.inference["precision"]),
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


def write_submissions(datamodule: DenoiseDataModule, method: Method, device: torch.device, out: Path) -> list:
    """Benchmark files of datasets that define them (SIDD: SubmitSrgb.csv / .mat) into ``out``, denoised
    exactly as the method was scored (the same tiling and ensemble)."""

    def denoise_array(image: Any) -> Any:
        x = torch.from_numpy(image).permute(2, 0, 1)[None].to(device)
        return method.run(x)[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy()

    files = []
    for layout in getattr(datamodule, "layouts", {}).values():
        if hasattr(layout, "submit"):
            files += layout.submit(out, denoise_array)
    for path in files:
        log.info("Wrote benchmark submission file %s", path)
    return files


def filter_sigma(cfg: DictConfig, datamodule: DenoiseDataModule) -> float | None:
    """The noise level handed to the filters ([0, 1] scale), or None for a per-image estimate."""
    setting = cfg.get("filter_sigma", "auto")
    if setting in (None, "auto"):
        return datamodule.noise_sigma
    if setting == "estimate":
        return None
    try:
        value = float(setting)
    except (TypeError, ValueError):
        value = -1.0
    if value < 0:
        raise ValueError(f"filter_sigma={setting!r}: expected auto, estimate, or a number >= 0 on the 0-255 scale")
    return value / 255.0


def filter_names(cfg: DictConfig) -> list[str]:
    """``filters=[bm3d,nlm]`` or ``filters=all``, checked against the configs under ``filter``."""
    chosen = cfg.get("filters") or []
    chosen = [chosen] if isinstance(chosen, str) else [str(name) for name in chosen]
    available = list(cfg.get("filter") or {})
    if "all" in chosen:
        from denoise.filters import FILTER_NAMES  # here, not at import: train.py never loads bm3d and OpenCV filters

        return [n for n in FILTER_NAMES if n in available] + [n for n in available if n not in FILTER_NAMES]
    for name in chosen:
        if name not in available:
            raise ValueError(f"filters: unknown filter {name!r}; expected names from {available} (conf/filter), or all")
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
    loaded = []
    for key, path in checkpoint_paths(cfg):
        net, spec = load_network(path, net_spec, key=key)
        channels = spec.get("in_channels")
        if channels is not None and channels != datamodule.channels:
            raise ValueError(
                f"{key}={path} expects {channels}-channel images but the data gives {datamodule.channels}; "
                f"set data.grayscale={'true' if channels == 1 else 'false'}"
            )
        loaded.append((spec["_target_"].rsplit(".", 1)[-1], path, net.to(device)))
    labels = unique_labels([name for name, _, _ in loaded], [path for _, path, _ in loaded])
    options = cfg.get("inference") or {}
    return [
        model_method(
            label,
            net,
            path,
            tile=int(options.get("tile", 0)),
            overlap=int(options.get("overlap", 32)),
            ensemble=bool(options.get("ensemble", False)),
            precision=check_precision(str(options.get("precision", "fp32"))),
        )
        for label, (_, path, net) in zip(labels, loaded, strict=True)
    ]


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


@torch.no_grad()
def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Every chosen filter and checkpoint on the data's test split: results.json/.csv/.md, per_image.csv,
    psnr_ssim.png and image grids in the run directory (and the logger, if one is configured)."""
    OmegaConf.resolve(cfg)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, verbose=False)
    out = run_dir()
    names = filter_names(cfg)
    if not checkpoint_paths(cfg) and not names:
        raise ValueError(
            "nothing to evaluate: give ckpt_path=PATH (or ckpt_paths=[A,B]) and/or filters=[bm3d,...] or filters=all"
        )
    datamodule: DenoiseDataModule = instantiate(cfg.data)
    device = resolve_device(cfg.get("device", "auto"))
    models = load_models(cfg, datamodule, device)
    sigma = filter_sigma(cfg, datamodule)
    methods = [filter_method(name, cfg.filter[name], sigma) for name in names] + models
    labels = [m.label for m in methods]
    if len(set(labels)) != len(labels):
        raise ValueError(f"two methods share a label: {labels}; change filter.<name>.label")
    loggers: list[Logger] = instantiate_group(cfg.get("logger"), "logger")  # built now, started at the end

    datamodule.setup("test")
    dataset = datamodule.dataset("test")
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, num_workers=datamodule.loader_workers(device.type))
    batches = (datamodule.on_after_batch_transfer(batch, 0) for batch in loader)
    comparison = compare(methods, batches, len(dataset), device, grid_images=int(cfg.get("grid_images", 3)))
    if not comparison.per_image:
        raise ValueError("the test split is empty")
    rows = summary_rows(comparison, methods)
    count = rows[0]["images"]
    sigma_text = "estimated per image" if sigma is None else f"{sigma * 255:g}/255"
    title = f"{len(methods)} methods on {count} test images (filter sigma: {sigma_text})"
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
        "filter_sigma": sigma,
        "inference_precision": str((cfg.get("inference") or {}).get("precision", "fp32")),
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

    write_csv(out / "results.csv", rows, RESULT_COLUMNS)
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
        submissions += write_submissions(datamodule, model, device, target)
    results["submissions"] = [str(p) for p in submissions]
    write_json(out / "results.json", results)
    try:
        for logger in loggers:
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        log_comparison(loggers, rows, pictures)
    finally:
        sync_commands = [lg.sync_command() for lg in loggers if isinstance(lg, ResilientWandbLogger)]
        if any(isinstance(lg, ResilientWandbLogger) for lg in loggers):
            import wandb

            wandb.finish()
    print_table(f"evaluate ({out})", rows, ("method", "kind", "psnr", "ssim", "psnr_gain", "seconds_per_megapixel"))
    log.info("Results: %s (results.csv/.md, per_image.csv, psnr_ssim.png, %d grids)", out, len(comparison.grids))
    for command in filter(None, sync_commands):
        log.info("W&B ran offline; upload this run with: %s", command)
    bad = {row["method"]: row["psnr"] for row in rows if not math.isfinite(row["psnr"])}
    if bad:
        log.warning("some PSNR values are not finite: %s", bad)
    return results
