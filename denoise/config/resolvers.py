"""The config resolvers the YAML uses: ``${if:...}``, ``${mixed_precision:...}``, the SLURM request's
``${slurm_tasks:...}``/``${slurm_gpus:...}``, ``${sqlite_url:...}``, ``${require:...}`` (an optional extra), and
the commands' ``--help``: ``${command_about:...}`` and ``${config_groups:}``."""

from __future__ import annotations

import importlib.util
from typing import Any

from omegaconf import OmegaConf


def slurm_tasks(devices: Any) -> int:
    """``launcher=slurm``: one SLURM task per device, so ``trainer.devices`` must be a count."""
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise ValueError(
            f"launcher=slurm needs trainer.devices as a number of devices per node (one SLURM task each), "
            f"got {devices!r}"
        )
    return devices


def slurm_gpus(accelerator: Any, devices: Any) -> int | None:
    """GPUs to request per node: one per device, none for a CPU run."""
    return None if str(accelerator) == "cpu" else slurm_tasks(devices)


def mixed_precision(accelerator: Any) -> str:
    """``trainer=gpu|ddp``: bf16-mixed on GPUs that support it (Ampere and newer), else 16-mixed; full
    precision on CPU. Resolved where the job runs, so a submitting host without a GPU does not decide."""
    import torch

    if str(accelerator) == "cpu" or not torch.cuda.is_available():
        return "32-true"
    return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"


def sqlite_url(path: str) -> str:
    """An SQLite URL for ``path``, creating its folder (SQLite will not): the Optuna study's storage."""
    from pathlib import Path

    file = Path(path).expanduser().resolve()
    file.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{file}"


#: what each Hydra command does, the first lines of its --help
ABOUT = {
    "train": "train a denoiser, test its best checkpoint, write results.json (the quickstart with no arguments)",
    "evaluate": "score classical filters and trained networks on the same noisy test images: tables, plots, grids",
    "eda": "the exploratory data analysis of a dataset: cameras, ISO, brightness, noise level, as plots and eda.md",
    "prepare": "build a real-noise dataset's crop-once patch store ahead of training",
}


#: the Hydra command running in this process (set by denoise.cli.hydra_command): its --help names it
COMMAND = {"name": "train"}


def command_name() -> str:
    return f"denoise-{COMMAND['name']}"


def command_about() -> str:
    name = COMMAND["name"]
    also = f" (or python {name}.py in a clone)" if name in ("train", "evaluate") else ""
    return f"{command_name()}{also}: {ABOUT.get(name, '')}"


def config_groups() -> str:
    """Every config group a user chooses from, ``group: option, ...`` a line: the suite's and those of a ``conf/``
    in the working folder; the fragments that configs include (``data/base``) and Hydra's own are left out."""
    from pathlib import Path

    from denoise.config.paths import CONF_DIR

    options: dict[str, set[str]] = {}
    for root in (CONF_DIR, Path.cwd() / "conf"):
        for path in root.rglob("*.yaml") if root.is_dir() else []:
            group = path.parent.relative_to(root).as_posix()
            if group != "." and group.split("/")[0] != "hydra" and not group.endswith("base"):
                options.setdefault(group, set()).add(path.stem)
    return "\n".join(f"{group}: {', '.join(sorted(names))}" for group, names in sorted(options.items()))


def register_resolvers() -> None:
    """``${if:cond,a,b}`` lets ``data.channels`` follow ``data.grayscale`` in YAML; ``slurm_tasks`` and
    ``slurm_gpus`` tie the SLURM request to ``trainer.devices`` (conf/launcher/slurm.yaml);
    ``mixed_precision`` picks bf16 or fp16 autocast for the GPU at hand (conf/trainer/gpu.yaml)."""
    resolvers = {
        "if": lambda cond, a, b: a if cond else b,
        "require": require_extra,
        "slurm_tasks": slurm_tasks,
        "slurm_gpus": slurm_gpus,
        "mixed_precision": mixed_precision,
        "sqlite_url": sqlite_url,
        "command_name": command_name,
        "command_about": command_about,
        "config_groups": config_groups,
    }
    for name, resolver in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)


#: optional parts: the module each needs -> the extra of pyproject.toml that installs it
EXTRAS = {
    "hydra_plugins.hydra_submitit_launcher": "slurm",
    "hydra_plugins.hydra_joblib_launcher": "parallel",
    "hydra_plugins.hydra_optuna_sweeper": "search",
    "tensorboard": "tensorboard",
    "onnx": "export",
    "onnxscript": "export",
    "onnxruntime": "export",
    "bm3d": "bm3d",
}


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require_extra(module: str, what: str = "") -> str:
    """``module`` if it is installed, else an error naming the ``pip install`` that brings it (and ``what``
    asked for it): a missing optional part says how to get it instead of failing deep inside Hydra."""
    if not installed(module):
        extra = EXTRAS.get(module, "dev")
        asked = f"{what} needs" if what else "this needs"
        raise ImportError(f"{asked} {module}, an optional part: pip install 'denoise[{extra}]' (or '.[{extra}]' here)")
    return module
