"""Hydra glue: composing the configs, instantiating from them, and the run directory. Only the tasks and the
entry points know Hydra; the data, models and the LightningModule receive plain values."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate as hydra_instantiate
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf, open_dict

from denoise.checkpoint import AtomicCheckpointIO
from denoise.config.paths import CONF_DIR
from denoise.config.specs import current_target

# Lightning's own use of a torch API deprecated in torch 2.10+; nothing a user can act on
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
# Lightning's hint whenever `srun` is installed; on a real SLURM job it detects the environment itself
warnings.filterwarnings("ignore", message=r"The `srun` command is available on your system but is not used")
# data.on_device's ticket loader is one process and its length exact; Lightning warns about any sized iterable
warnings.filterwarnings("ignore", message=r"Your `IterableDataset` has `__len__` defined")


def current_targets(config: Any) -> Any:
    """``config`` with every ``_target_`` of a module that has moved (a config of an earlier version) pointing where
    it lives now (:func:`denoise.config.specs.current_target`)."""
    if isinstance(config, DictConfig):
        stale = [node for node in _walk(config) if isinstance(node.get("_target_"), str)
                 and current_target(node["_target_"]) != node["_target_"]]  # fmt: skip
        if stale:
            config = copy.deepcopy(config)
            for node in _walk(config):
                if isinstance(node.get("_target_"), str):
                    with open_dict(node):
                        node["_target_"] = current_target(node["_target_"])
    return config


def _walk(node: DictConfig) -> list[DictConfig]:
    found = [node]
    for key in node:
        child = node._get_node(key)
        if isinstance(child, DictConfig):
            found += _walk(child)
    return found


def instantiate(config: Any, **kwargs: Any) -> Any:
    """Hydra's instantiate (of targets where they live now), but our own config errors (which name the key or
    file) surface unwrapped."""
    try:
        return hydra_instantiate(current_targets(config), **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, ValueError | OSError | TypeError):
            raise err.__cause__ from None
        raise


#: the config tree of this checkout


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
    # every checkpoint lands whole or not at all, on any filesystem (denoise.checkpoint.AtomicCheckpointIO)
    plugins = [AtomicCheckpointIO()]
    return instantiate(OmegaConf.create(options), callbacks=callbacks, logger=loggers or False, plugins=plugins)


def check_accelerator(trainer_cfg: DictConfig) -> None:
    """``trainer=gpu`` (or ``ddp``) on a machine without the GPUs it asks for: one message at once, not
    Lightning's ``MisconfigurationException`` after the data is set up."""
    import torch

    accelerator = str(trainer_cfg.get("accelerator", "auto"))
    if accelerator not in ("gpu", "cuda"):
        return
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    devices = trainer_cfg.get("devices", 1)
    wanted = devices if isinstance(devices, int) and devices > 0 else 1
    if available < wanted:
        found = "no CUDA GPU" if not available else f"{available} CUDA GPU(s)"
        raise ValueError(
            f"trainer.accelerator={accelerator} with trainer.devices={devices} needs {wanted} CUDA GPU(s); this "
            f"machine has {found} (torch {torch.__version__}). Use trainer=cpu (or trainer.accelerator=cpu), "
            "fewer trainer.devices, or PyTorch's CUDA build on a GPU machine (pytorch.org)"
        )


def sweep_group(task: str = "train") -> str | None:
    """In a multirun (a sweep, Optuna trials): ``<task>-<sweep folder>``, the W&B group of its runs; else None."""
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return None
    return f"{task}-{Path(str(hydra_cfg.sweep.dir)).name}"
