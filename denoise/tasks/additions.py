"""Keys added on the command line with ``+`` that nothing reads. Hydra adds any ``+key=value`` to the config, and
its own hint for a misspelt key (``trainer.max_epoch=3``: "To append to your config use +trainer.max_epoch=3")
leads straight to one: the run then trains with the defaults and says nothing. Here every added key must be a
config group (``+hparams_search=optuna``), a part's ``_target_``, or an argument that the part it is added to takes
(``+trainer.profiler=simple``); anything else is named with the closest key there is.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from denoise.config.paths import CONF_DIR
from denoise.config.specs import current_target


def _arguments(target: str) -> set[str] | None:
    """The keyword arguments a part takes: its own and, where it hands ``**kwargs`` on, its base classes' (None:
    any, or it cannot be read here)."""
    module_name, _, name = current_target(target).rpartition(".")
    try:
        obj = getattr(importlib.import_module(module_name), name)
        functions = (
            [k.__dict__["__init__"] for k in obj.__mro__ if "__init__" in k.__dict__] if inspect.isclass(obj) else [obj]
        )
        names: set[str] = set()
        for function in functions:
            parameters = inspect.signature(function).parameters.values()
            names |= {p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)} - {"self"}
            if not any(p.kind is p.VAR_KEYWORD for p in parameters):
                return names
    except Exception:  # unimportable or without a signature: instantiate reports it
        return None
    return None


def _keys(node: Any, prefix: str = "") -> list[str]:
    """Every dotted key of a config, and every argument its parts take."""
    found = []
    if isinstance(node, DictConfig):
        if "_target_" in node:
            found += [f"{prefix}{name}" for name in sorted(_arguments(str(node.get("_target_"))) or ())]
        for key in node:
            found.append(f"{prefix}{key}")
            child = node._get_node(key)
            if isinstance(child, DictConfig):
                found += _keys(child, f"{prefix}{key}.")
    return found


def _group(key: str, conf_dirs: list[Path]) -> bool:
    return any((folder / key.replace(".", "/")).is_dir() for folder in conf_dirs)


def _read(cfg: DictConfig, key: str) -> bool:
    """Whether something reads ``key``: a part's ``_target_``-like key, a value that interpolates it, or an argument
    of the part it is added to."""
    parent_key, _, name = key.rpartition(".")
    if name.startswith("_") or "${" + key + "}" in OmegaConf.to_yaml(cfg):
        return True
    parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
    if not isinstance(parent, DictConfig) or "_target_" not in parent:
        return False
    arguments = _arguments(str(parent.get("_target_")))
    return arguments is None or name in arguments


def unread_additions(cfg: DictConfig, overrides: list[str] | None = None) -> list[str]:
    """Every ``+key=value`` of the command line (``overrides``: Hydra's, by default) that nothing reads, each with
    the closest key there is."""
    if overrides is None:
        overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    conf_dirs = [CONF_DIR, Path.cwd() / "conf"]
    wrong, known = [], None
    for override in overrides:
        if not override.startswith("+") or override.startswith("++"):
            continue
        key = override[1:].partition("=")[0]
        if _group(key, conf_dirs) or _read(cfg, key):
            continue
        known = known if known is not None else _keys(cfg)
        closest = difflib.get_close_matches(key, [k for k in known if k != key], n=1, cutoff=0.6)
        hint = f"; did you mean {closest[0]}=...?" if closest else "."
        wrong.append(
            f"{override}: nothing reads '{key}' (the run would go on with the defaults){hint} A key of the config "
            "is changed without '+'; '+' adds an argument that a part takes (e.g. +trainer.profiler=simple)"
        )
    return wrong
