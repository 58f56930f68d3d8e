"""Small helpers between Hydra configs and plain Python.

Only the entry points and ``tasks.py`` know Hydra; everything else receives plain dicts, and networks,
optimizers and schedulers are built from ``{"_target_": ..., ...}`` specs by :func:`build`, which refuses
anything outside an allow-list. That matters because a checkpoint stores these specs and a checkpoint is
untrusted input: a crafted ``_target_: os.system`` must never be called.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from omegaconf import OmegaConf

#: module prefixes whose callables a spec may name
ALLOWED_TARGET_PREFIXES: tuple[str, ...] = ("denoise.", "torch.optim.", "torch.nn.")


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


def register_resolvers() -> None:
    """``${if:cond,a,b}`` lets ``data.channels`` follow ``data.grayscale`` in YAML; ``slurm_tasks`` and
    ``slurm_gpus`` tie the SLURM request to ``trainer.devices`` (conf/launcher/slurm.yaml);
    ``mixed_precision`` picks bf16 or fp16 autocast for the GPU at hand (conf/trainer/gpu.yaml)."""
    resolvers = {
        "if": lambda cond, a, b: a if cond else b,
        "slurm_tasks": slurm_tasks,
        "slurm_gpus": slurm_gpus,
        "mixed_precision": mixed_precision,
        "sqlite_url": sqlite_url,
    }
    for name, resolver in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)


def to_plain(obj: Any) -> Any:
    """Recursively turn mappings/sequences (e.g. DictConfig) into dicts/lists so hparams pickle as data."""
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, Sequence) and not isinstance(obj, str | bytes):
        return [to_plain(v) for v in obj]
    return obj


def import_target(path: str, what: str = "_target_") -> Callable[..., Any]:
    """Import ``package.module.Name`` if it is on the allow-list, with an error naming the config key."""
    if not isinstance(path, str) or not path.startswith(ALLOWED_TARGET_PREFIXES):
        raise ValueError(f"{what}={path!r} is not allowed: targets must live under one of {ALLOWED_TARGET_PREFIXES}")
    module_name, _, attr = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"{what}={path!r} cannot be imported: {err}") from err


def build(spec: Mapping[str, Any], *args: Any, what: str = "spec", **extra: Any) -> Any:
    """Instantiate a ``_target_`` spec (``_partial_: true`` returns a functools.partial instead)."""
    if not isinstance(spec, Mapping) or "_target_" not in spec:
        raise ValueError(f"{what} must be a mapping with a '_target_' key, got {spec!r}")
    params = {k: v for k, v in to_plain(spec).items() if not k.startswith("_")}
    target = import_target(spec["_target_"], f"{what}._target_")
    if spec.get("_partial_", False):
        return functools.partial(target, *args, **params, **extra)
    return target(*args, **params, **extra)
