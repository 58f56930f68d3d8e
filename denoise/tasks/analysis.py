"""The data jobs: the exploratory data analysis of a dataset, and building its crop-once patch store ahead of
training."""

from __future__ import annotations

import logging
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from denoise.config.specs import build
from denoise.data.console import show_table
from denoise.data.datamodule import PairedDataModule
from denoise.data.interrupt import StopSignalError
from denoise.eda import run as run_eda
from denoise.tasks.compose import instantiate, run_dir
from denoise.tasks.rundir import admit_run
from denoise.tasks.schema import check_mandatory, check_types
from denoise.tasks.wrapper import task_wrapper
from denoise.training.preemption import PREEMPTED_EXIT_CODE, PreemptedExit

log = logging.getLogger(__name__)


@task_wrapper
def eda(cfg: DictConfig) -> dict[str, Any]:
    """eda.md, PNG plots and eda.json of the configured dataset in the run directory."""
    check_mandatory(cfg, "denoise-eda")
    check_types(cfg, "denoise-eda")
    OmegaConf.resolve(cfg)
    datamodule = instantiate(cfg.data)
    admit_run()
    out = run_dir()
    choice = HydraConfig.get().runtime.choices.get("data", "data") if HydraConfig.initialized() else "data"
    report = run_eda(datamodule, out, title=f"data={choice}", options=OmegaConf.to_container(cfg.eda))
    summary = report["summary"]
    what = f"{summary['pairs']} pairs" if summary.get("pairs") else f"{summary.get('images', 0)} noisy images"
    log.info("EDA of %s: %s", what, out / "eda.md")
    if "noise" in report:
        diagnosis = report["noise"]["diagnosis"]
        log.info("Noise: %s", diagnosis["verdict"])
    return report


@task_wrapper
def prepare(cfg: DictConfig) -> dict[str, Any]:
    """Build the dataset's patch stores now (training would on first use), and print where and how big."""
    check_mandatory(cfg, "denoise-prepare")
    check_types(cfg, "denoise-prepare")
    OmegaConf.resolve(cfg)
    datamodule = instantiate(cfg.data)
    if not isinstance(datamodule, PairedDataModule):
        raise ValueError(f"data={cfg.data._target_}: this dataset has no patch store (only real-pair datasets do)")
    objective = build(cfg.model.objective, what="model.objective", kind="objective")
    datamodule.serve(objective.needs, objective.name)  # noise2noise: the store keeps a second shot per sub-image
    admit_run()
    try:
        stores = datamodule.patch_stores()
    except StopSignalError as err:
        log.warning("Pre-empted: %s. Exiting with status %d; the same command starts again", err, PREEMPTED_EXIT_CODE)
        raise PreemptedExit() from None
    rows = []
    for name, store in stores.items():
        size = sum(f.stat().st_size for f in store.folder.iterdir()) / 1e9
        index = store.index
        rows.append([name, len(index["pairs"]), index["patches"], index["size"], index["dtype"], f"{size:.3f}",
                     store.folder])  # fmt: skip
    columns = ("dataset", "pairs", "sub-images", "size", "dtype", "GB", "folder")
    show_table("patch stores", columns, rows, right=("pairs", "sub-images", "size", "GB"))
    return {name: str(store.folder) for name, store in stores.items()}
