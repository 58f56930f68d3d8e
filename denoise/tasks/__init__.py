"""The jobs the entry points run, built from a composed config: :func:`train` and :func:`evaluate`.

``compose`` is the Hydra glue (composing, instantiating, the run directory), ``schema`` the config's checks,
``resume`` which run to continue, ``training`` and ``evaluation`` the two jobs, ``wrapper`` the frame every job
runs in (W&B closed, the run directory logged, whatever happens). The names below load their modules only when
first used, so that the config's checks run before PyTorch is imported.
"""

from __future__ import annotations

import importlib
from typing import Any

#: name -> the module that defines it
_EXPORTS = {
    "CONF_DIR": "denoise.tasks.compose",
    "compose_config": "denoise.tasks.compose",
    "instantiate": "denoise.tasks.compose",
    "model_specs": "denoise.tasks.compose",
    "run_dir": "denoise.tasks.compose",
    "evaluate": "denoise.tasks.evaluation",
    "train": "denoise.tasks.training",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'denoise.tasks' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
