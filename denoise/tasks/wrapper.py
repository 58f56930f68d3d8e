"""The frame every task runs in (the lightning-hydra-template's ``task_wrapper``): whatever happens inside,
Weights & Biases is finished (files flushed, never failing the run) and the run directory is logged."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf

from denoise.tasks.compose import run_dir
from denoise.tasks.rundir import run_admitted
from denoise.training.loggers import finish_wandb

log = logging.getLogger(__name__)
Result = TypeVar("Result")


def close_wandb() -> None:
    """Finish the W&B run of this process if one was started (rank 0 only ever starts one)."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        finish_wandb()


def output_dir(cfg: DictConfig) -> str:
    """Where the run's files are: the run it continued where a checkpoint of another run is resumed
    (``paths.output_dir``), else this launch's folder."""
    try:
        return str(OmegaConf.select(cfg, "paths.output_dir", default=None) or run_dir())
    except Exception:  # an interpolation that cannot resolve here: this launch's own folder
        return str(run_dir())


def task_wrapper(task: Callable[[DictConfig], Result]) -> Callable[[DictConfig], Result]:
    """Run ``task(cfg)``; in ``finally`` close W&B and say where the run's files are (a run refused by its checks
    has none)."""

    @functools.wraps(task)
    def wrapped(cfg: DictConfig, *args: Any, **kwargs: Any) -> Result:
        try:
            return task(cfg, *args, **kwargs)
        finally:
            close_wandb()
            if run_admitted():
                log.info("Run directory: %s", output_dir(cfg))

    return wrapped
