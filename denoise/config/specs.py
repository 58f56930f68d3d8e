"""Networks, losses, optimizers, schedulers, objectives and filters as ``{"_target_": ..., ...}`` specs, built from a
closed registry.

Only the entry points and the tasks know Hydra; everything else receives plain dicts, and :func:`build` builds
only what :data:`REGISTRY` names, with plain literal arguments. That matters because a checkpoint stores these
specs and a checkpoint is untrusted input: a crafted ``_target_`` must never reach a callable outside the list
(``os.system``, ``builtins.open``, or a function of this package that hands a config on to Hydra's
``instantiate``), and no argument may smuggle in a nested spec, an object or a reference for such a function to
follow.
"""

from __future__ import annotations

import functools
import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from denoise.config.budget import sized_build

#: every target a spec may name, by kind: the suite's networks, the optimizers, its LR schedules, objectives
#: and filters. A new architecture is added here (and to conf/model/) to be buildable.
_NETWORKS = ("autoencoder.ConvAutoencoder", "bsn.APBSN", "dncnn.DnCNN", "drunet.DRUNet", "ffdnet.FFDNet", "mwcnn.MWCNN",
             "nafnet.NAFNet", "pridnet.PRIDNet", "rednet.REDNet", "restormer.Restormer", "swinir.SwinIR")  # fmt: skip
_OPTIMIZERS = ("Adam", "AdamW", "SGD", "RMSprop", "Adamax", "NAdam", "RAdam", "Adagrad")
_SCHEDULES = ("constant", "cosine_with_warmup", "exponential_decay", "piecewise", "step_decay")
_LOSSES = ("torch.nn.L1Loss", "torch.nn.MSELoss", "denoise.training.losses.CharbonnierLoss",
           "denoise.training.losses.PSNRLoss")  # fmt: skip
_OBJECTIVES = ("Supervised", "Noise2Noise", "Neighbor2Neighbor", "Noise2Void", "PixelShuffleBlindSpot")
_FILTERS = ("mean", "gaussian", "median", "adaptive_median", "wiener", "bilateral", "nlm", "bm3d")
REGISTRY: dict[str, tuple[str, ...]] = {
    "network": tuple(f"denoise.models.{name}" for name in _NETWORKS),
    "loss": _LOSSES,
    "optimizer": tuple(f"torch.optim.{name}" for name in _OPTIMIZERS),
    "scheduler": tuple(f"denoise.training.optim.{name}" for name in _SCHEDULES),
    "objective": tuple(f"denoise.training.objectives.{name}" for name in _OBJECTIVES),
    "filter": tuple(f"denoise.evaluation.filters.{name}" for name in _FILTERS),
}
#: the modules that moved when the package was grouped by role (training/, evaluation/, inference/, config/): an
#: old path that configs or stored checkpoints still name -> where it lives now
MOVED_MODULES = {
    "denoise.module": "denoise.training.module", "denoise.objectives": "denoise.training.objectives",
    "denoise.losses": "denoise.training.losses", "denoise.optim": "denoise.training.optim",
    "denoise.finite_guard": "denoise.training.finite_guard", "denoise.step_log": "denoise.training.step_log",
    "denoise.progress": "denoise.training.progress", "denoise.preemption": "denoise.training.preemption",
    "denoise.loggers": "denoise.training.loggers", "denoise.runlock": "denoise.training.runlock",
    "denoise.search": "denoise.training.search", "denoise.comparison": "denoise.evaluation.comparison",
    "denoise.filters": "denoise.evaluation.filters", "denoise.metrics": "denoise.evaluation.metrics",
    "denoise.report": "denoise.evaluation.report", "denoise.export": "denoise.inference.export",
    "denoise.precision": "denoise.inference.precision", "denoise.specs": "denoise.config.specs",
    "denoise.resolvers": "denoise.config.resolvers",
}  # fmt: skip
#: old target paths that configs or stored checkpoints may still name -> where the class lives now
ALIASES: dict[str, str] = {
    f"{old}.{name}": f"{new}.{name}"
    for kind in ("scheduler", "objective", "filter")
    for target in REGISTRY[kind]
    for old, new in MOVED_MODULES.items()
    if target.startswith(new + ".") and (name := target[len(new) + 1 :])
}


def current_target(path: str) -> str:
    """``path`` where it lives now: a registered old path through :data:`ALIASES`, any other target of a moved
    module (a callback, a logger, the LightningModule that a config of an earlier version names) by its module."""
    if path in ALIASES:
        return ALIASES[path]
    module, _, name = path.rpartition(".")
    return f"{MOVED_MODULES[module]}.{name}" if module in MOVED_MODULES else path


#: a checkpoint of an earlier version stores its loss by name (before losses were specs): that name -> its spec
STORED_LOSS_NAMES = dict(zip(("l1", "l2", "charbonnier", "psnr"), _LOSSES, strict=True))
DEFAULT_LOSS = {"_target_": "torch.nn.L1Loss"}
#: a checkpoint from before objectives existed stores none: it trained supervised
DEFAULT_OBJECTIVE = {"_target_": "denoise.training.objectives.Supervised"}


def loss_spec(loss: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """``model.loss`` as its spec: a spec as it is, None as L1, and the name an older checkpoint stored as the spec
    it meant (configs choose a loss by spec only: ``model/loss=l2`` picks ``conf/model/loss/l2.yaml``)."""
    if loss is None:
        return dict(DEFAULT_LOSS)
    if isinstance(loss, str):
        if loss not in STORED_LOSS_NAMES:
            raise SpecError(f"model.loss={loss!r} is not a loss: choose one with model/loss=<name> "
                            f"(conf/model/loss/: {', '.join(STORED_LOSS_NAMES)})")  # fmt: skip
        return {"_target_": STORED_LOSS_NAMES[loss]}
    return to_plain(loss)


def objective_spec(objective: Mapping[str, Any] | None) -> dict[str, Any]:
    """``model.objective`` as its spec: a spec as it is, None as supervised (``objective=noise2noise`` picks
    ``conf/objective/noise2noise.yaml``, which sets this spec)."""
    if objective is None:
        return dict(DEFAULT_OBJECTIVE)
    if isinstance(objective, str):
        raise SpecError(f"model.objective={objective!r} is not an objective: choose one with objective=<name> "
                        "(conf/objective/: supervised, noise2noise, neighbor2neighbor, noise2void)")  # fmt: skip
    return to_plain(objective)


#: the spec keys that are not arguments
_SPEC_KEYS = ("_target_", "_partial_")
#: how deep an argument may nest (lists of lists, dicts of lists): a network's arguments need 2
_MAX_DEPTH = 4


class SpecError(ValueError):
    """A spec names something outside the registry, or has arguments that are not plain literals."""


def to_plain(obj: Any) -> Any:
    """Recursively turn mappings/sequences (e.g. DictConfig) into dicts/lists so hparams pickle as data."""
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, Sequence) and not isinstance(obj, str | bytes):
        return [to_plain(v) for v in obj]
    return obj


def allowed_targets(kind: str | None = None) -> tuple[str, ...]:
    """The targets a spec of ``kind`` may name (every kind's when None)."""
    if kind is None:
        return tuple(target for targets in REGISTRY.values() for target in targets)
    if kind not in REGISTRY:
        raise ValueError(f"unknown spec kind {kind!r}; expected one of {sorted(REGISTRY)}")
    return REGISTRY[kind]


def check_literal(value: Any, key: str, depth: int = 0) -> None:
    """Refuse anything but ``None``, booleans, finite or infinite numbers, strings, and lists/dicts of them."""
    if depth > _MAX_DEPTH:
        raise SpecError(f"{key} nests deeper than {_MAX_DEPTH} levels; expected plain values")
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if math.isnan(value):
            raise SpecError(f"{key}=nan is not a usable value")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check_literal(item, f"{key}[{index}]", depth + 1)
        return
    if isinstance(value, dict):
        for name, item in value.items():
            if not isinstance(name, str) or name.startswith("_"):
                raise SpecError(
                    f"{key} holds the key {name!r}: nested specs and private keys are refused (plain values only)"
                )
            check_literal(item, f"{key}.{name}", depth + 1)
        return
    raise SpecError(f"{key} is a {type(value).__name__}; expected a plain value (number, string, list, dict)")


def import_target(path: Any, what: str = "_target_", kind: str | None = None) -> Callable[..., Any]:
    """The registered callable ``path`` names (an old path through :data:`ALIASES`), with an error naming the
    config key. Nothing outside :data:`REGISTRY` is imported."""
    allowed = allowed_targets(kind)
    path = ALIASES.get(path, path) if isinstance(path, str) else path
    if not isinstance(path, str) or path not in allowed:
        expected = f"a {kind} must be one of {list(allowed)}" if kind else f"expected one of {len(allowed)} targets"
        raise SpecError(f"{what}={path!r} is not allowed: {expected} (the closed list denoise.config.specs.REGISTRY)")
    module_name, _, attr = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr)
    except (ImportError, AttributeError) as err:
        raise SpecError(f"{what}={path!r} cannot be imported: {err}") from err


def arguments(spec: Mapping[str, Any], what: str = "spec") -> dict[str, Any]:
    """A spec's arguments, checked to be plain literals (an error names the key)."""
    params = {}
    for name, value in to_plain(spec).items():
        if name in _SPEC_KEYS:
            continue
        if not isinstance(name, str) or name.startswith("_") or not name.isidentifier():
            raise SpecError(f"{what} has the key {name!r}; expected argument names (private keys are refused)")
        check_literal(value, f"{what}.{name}")
        params[name] = value
    return params


def check_spec(spec: Mapping[str, Any], what: str = "spec", kind: str | None = None) -> None:
    """What :func:`build` checks (a registered target, plain literal arguments), without building: a spec that
    is stored now and built later (an optimizer, a schedule) is refused when it arrives."""
    if not isinstance(spec, Mapping) or "_target_" not in spec:
        raise SpecError(f"{what} must be a mapping with a '_target_' key, got {spec!r}")
    import_target(spec["_target_"], f"{what}._target_", kind)
    arguments(spec, what)


def build(spec: Mapping[str, Any], *args: Any, what: str = "spec", kind: str | None = None, **extra: Any) -> Any:
    """Instantiate a registered ``_target_`` spec (``_partial_: true`` returns a functools.partial instead).

    ``kind`` (network, optimizer, scheduler, objective, filter) narrows the registry to that kind's targets.
    ``args``/``extra`` come from the caller's code (parameters, an optimizer), never from the spec."""
    if not isinstance(spec, Mapping) or "_target_" not in spec:
        raise SpecError(f"{what} must be a mapping with a '_target_' key, got {spec!r}")
    partial = spec.get("_partial_", False)
    if not isinstance(partial, bool):
        raise SpecError(f"{what}._partial_={partial!r}: expected true or false")
    target = import_target(spec["_target_"], f"{what}._target_", kind)
    params = arguments(spec, what)
    if partial:
        return functools.partial(target, *args, **params, **extra)
    if kind == "network":
        return sized_build(target, what, spec["_target_"], *args, **params, **extra)
    return target(*args, **params, **extra)
