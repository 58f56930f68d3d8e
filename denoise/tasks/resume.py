"""Resuming a run: which checkpoint, which run directory, whether it is free and fits this config."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from denoise.checkpoint import safe_load
from denoise.data.files import fingerprint_changes
from denoise.tasks.compose import run_dir
from denoise.training.runlock import refuse_if_busy

log = logging.getLogger(__name__)


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
    checkpoint = safe_load(ckpt_path, mmap=True)  # checked without reading the weights; Lightning loads it
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
    hparams = checkpoint.get("hyper_parameters")
    saved = hparams.get("net") if isinstance(hparams, dict) else None
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


def stored_training_data(checkpoint: dict[str, Any]) -> dict[str, Any] | None:
    """The fingerprint of the training files a checkpoint was saved with (the datamodule's state, under its class
    name), or None for a checkpoint of an earlier version."""
    for value in checkpoint.values():
        if isinstance(value, dict) and isinstance(value.get("training_data"), dict):
            return value["training_data"]
    return None


def check_training_data(datamodule: Any, ckpt_path: str, allow_changed: bool) -> None:
    """A resume continues on the training files its checkpoint was trained on: files changed, added or removed
    since (a swapped image, a re-exported dataset) are named, and the run refused unless ``data.allow_changed``."""
    then = stored_training_data(safe_load(ckpt_path, mmap=True))
    if then is None:
        log.info("%s holds no fingerprint of its training data (an earlier version): not compared", ckpt_path)
        return
    changes = fingerprint_changes(then, datamodule.training_fingerprint())
    if not changes:
        return
    message = f"ckpt_path={ckpt_path} was trained on other training files than the data gives now: {changes}"
    if not allow_changed:
        advice = "Resume with the data it was trained on, or pass data.allow_changed=true to continue on these files"
        raise ValueError(f"{message}. {advice}")
    log.warning("%s; continuing, as data.allow_changed=true asks", message)
