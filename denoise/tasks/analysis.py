"""The data jobs: the exploratory data analysis of a dataset, and building its crop-once patch store ahead of
training."""

from __future__ import annotations

import logging
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from denoise.config.specs import build
from denoise.data.datamodule import PairedDataModule
from denoise.eda import run as run_eda
from denoise.tasks.compose import instantiate, run_dir
from denoise.tasks.wrapper import task_wrapper

log = logging.getLogger(__name__)


@task_wrapper
def eda(cfg: DictConfig) -> dict[str, Any]:
    """eda.md, PNG plots and eda.json of the configured dataset in the run directory."""
    OmegaConf.resolve(cfg)
    datamodule = instantiate(cfg.data)
    out = run_dir()
    choice = HydraConfig.get().runtime.choices.get("data", "data") if HydraConfig.initialized() else "data"
    report = run_eda(datamodule, out, title=f"data={choice}", options=OmegaConf.to_container(cfg.eda))
    log.info("EDA of %d pairs: %s", report["summary"]["pairs"], out / "eda.md")
    return report


@task_wrapper
def prepare(cfg: DictConfig) -> dict[str, Any]:
    """Build the dataset's patch stores now (training would on first use), and print where and how big."""
    OmegaConf.resolve(cfg)
    datamodule = instantiate(cfg.data)
    if not isinstance(datamodule, PairedDataModule):
        raise ValueError(f"data={cfg.data._target_}: this dataset has no patch store (only real-pair datasets do)")
    objective = build(cfg.model.objective, what="model.objective", kind="objective")
    datamodule.serve(objective.needs, objective.name)  # noise2noise: the store keeps a second shot per sub-image
    stores = datamodule.patch_stores()
    table = Table(title="patch stores")
    for column in ("dataset", "pairs", "sub-images", "size", "dtype", "GB", "folder"):
        table.add_column(column)
    for name, store in stores.items():
        size = sum(f.stat().st_size for f in store.folder.iterdir()) / 1e9
        index = store.index
        table.add_row(name, str(len(index["pairs"])), str(index["patches"]), str(index["size"]), index["dtype"],
                      f"{size:.3f}", str(store.folder))  # fmt: skip
    Console().print(table)
    return {name: str(store.folder) for name, store in stores.items()}
