"""Networks, optimizers and schedulers as ``{"_target_": ..., ...}`` specs, built through an allow-list.

Only the entry points and the tasks know Hydra; everything else receives plain dicts, and :func:`build` refuses
any target outside :data:`ALLOWED_TARGET_PREFIXES`. That matters because a checkpoint stores these specs and a
checkpoint is untrusted input: a crafted ``_target_: os.system`` must never be called.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

#: module prefixes whose callables a spec may name
ALLOWED_TARGET_PREFIXES: tuple[str, ...] = ("denoise.", "torch.optim.", "torch.nn.")


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
