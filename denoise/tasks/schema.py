"""The config's values checked against their types before anything starts (no logger, no data, no network): a
``trainer.max_epochs=abc`` is one message naming the key, the value and what was expected, not a ``TypeError``
from deep inside Lightning after a W&B run has begun.

A validation pass over the composed config rather than Hydra structured configs: the config groups stay plain
YAML that users copy and edit, and a key missing from a group (a user's own trainer config) is not an error
here; only a value of the wrong kind is. Two sources of kinds: :data:`SCHEMA` (keys with a range, and the
trainer's), and every argument of every part of the suite the config builds (the data and its datasets, the
noise, the model and its network, loss, objective, schedule): each value is checked against the type its class
declares, so that no key is left out (``data.min_noise_sigma=abc`` is named here, not a ``TypeError`` after the
images are read).
"""

from __future__ import annotations

import collections.abc
import importlib
import inspect
import math
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from denoise.config.specs import current_target
from denoise.tasks.additions import unread_additions

Check = Callable[[Any], bool]


def _integer(minimum: int | None = None) -> Check:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and (minimum is None or v >= minimum)


def _number(minimum: float | None = None) -> Check:
    def check(v: Any) -> bool:
        if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
            return False
        return minimum is None or v >= minimum

    return check


def _optional(check: Check) -> Check:
    return lambda v: v is None or check(v)


def _either(*checks: Check) -> Check:
    return lambda v: any(check(v) for check in checks)


def _choice(*options: Any) -> Check:
    return lambda v: v in options


def _boolean(v: Any) -> bool:
    return isinstance(v, bool)


def _string(v: Any) -> bool:
    return isinstance(v, str)


def _sigma(v: Any) -> bool:
    """A sigma on the 0-255 scale, or ``[low, high]`` with ``0 <= low <= high``."""
    if _number(0)(v):
        return True
    return isinstance(v, list | tuple) and len(v) == 2 and all(_number(0)(x) for x in v) and v[0] <= v[1]


def _spec(v: Any) -> bool:
    """A part chosen by its config group: a mapping naming its class (``_target_``)."""
    return isinstance(v, dict) and isinstance(v.get("_target_"), str)


def _device_list(v: Any) -> bool:
    return isinstance(v, list | tuple) and all(_integer(0)(x) for x in v)


_POSITIVE = "an integer >= 1"
#: key -> (check, what is expected); keys absent from the config are not checked
SCHEMA: dict[str, tuple[Check, str]] = {
    "seed": (_optional(_integer(0)), "an integer >= 0 or null"),
    "train": (_boolean, "true or false"),
    "test": (_boolean, "true or false"),
    "overwrite": (_boolean, "true or false"),
    "trainer.max_epochs": (_optional(_integer(-1)), "an integer (-1: no limit) or null"),
    "trainer.min_epochs": (_optional(_integer(0)), "an integer >= 0 or null"),
    "trainer.max_steps": (_integer(-1), "an integer (-1: no limit)"),
    "trainer.max_time": (_optional(_string), "null or DD:HH:MM:SS, e.g. 00:02:00:00"),
    "trainer.devices": (_either(_integer(-1), _string, _device_list), "an integer, 'auto', or device indices"),
    "trainer.num_nodes": (_integer(1), _POSITIVE),
    "trainer.precision": (_either(_string, _choice(16, 32, 64)), "e.g. 32-true, bf16-mixed, 16-mixed"),
    "trainer.check_val_every_n_epoch": (_optional(_integer(1)), f"{_POSITIVE} or null"),
    "trainer.log_every_n_steps": (_integer(1), _POSITIVE),
    "trainer.num_sanity_val_steps": (_integer(-1), "an integer (-1: all)"),
    "trainer.gradient_clip_val": (_optional(_number(0)), "a number >= 0 or null"),
    "trainer.accumulate_grad_batches": (_integer(1), _POSITIVE),
    "trainer.deterministic": (_either(_boolean, _choice("warn")), "true, false or warn"),
    "trainer.channels_last": (_boolean, "true or false"),
    "data.batch_size": (_integer(1), _POSITIVE),
    "data.eval_batch_size": (_integer(1), _POSITIVE),
    "data.patch_size": (_integer(1), _POSITIVE),
    "data.samples_per_epoch": (_optional(_integer(1)), f"{_POSITIVE} or null"),
    "data.num_workers": (_either(_integer(0), _choice("auto")), "an integer >= 0 or auto"),
    "data.grayscale": (_boolean, "true or false"),
    "data.augment": (_boolean, "true or false"),
    "data.on_device": (_boolean, "true or false"),
    "data.allow_changed": (_boolean, "true or false"),
    "data.store.enabled": (_boolean, "true or false"),
    "data.store.size": (_integer(1), _POSITIVE),
    "data.store.stride": (_integer(1), _POSITIVE),
    "noise": (_spec, "a noise model's spec (_target_): noise=gaussian | poisson_gaussian (conf/noise/)"),
    "noise.sigma": (_sigma, "a sigma >= 0 on the 0-255 scale, or [low, high]"),
    "model.optimizer.lr": (_number(0), "a number >= 0"),
    "model.optimizer.weight_decay": (_number(0), "a number >= 0"),
    "model.loss": (_spec, "a loss's spec (_target_): model/loss=l1 | l2 | charbonnier | psnr (conf/model/loss/)"),
    "model.objective": (_spec, "an objective spec (_target_): objective=noise2noise etc. (conf/objective/)"),
    "model.compile": (_boolean, "true or false"),
    "inference.tile": (_integer(0), "an integer >= 0 (0: whole images)"),
    "inference.overlap": (_integer(0), "an integer >= 0"),
    "inference.tile_batch": (_integer(1), _POSITIVE),
    "inference.ensemble": (_boolean, "true or false"),
    "inference.tlc": (_boolean, "true or false"),
    "metrics.crop_border": (_integer(0), "an integer >= 0"),
    "grid_images": (_integer(0), "an integer >= 0"),
}


def _describe(value: Any) -> str:
    kinds = (("a boolean", bool), ("an integer", int), ("a number", float), ("a string", str), ("null", type(None)))
    kind = {kind: name for name, kind in (*kinds, ("a list", list), ("a mapping", dict))}
    return f"{value!r} ({kind.get(type(value), type(value).__name__)})"


def matches(value: Any, hint: Any) -> bool:
    """Whether a config value (a plain YAML value) is of the annotated type ``hint``; a type this check does not
    know (a class of the suite, a callable) passes: its own constructor checks it."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if hint is type(None):
        return value is None
    simple = {bool: _boolean, int: _integer(), float: _either(_integer(), _number()), str: _string, Path: _string}
    if hint in simple:
        return simple[hint](value)
    base = origin or hint
    if base in (list, tuple, collections.abc.Sequence, collections.abc.Iterable):
        if not isinstance(value, list | tuple):
            return False
        items = [arg for arg in args if arg is not Ellipsis]
        return not items or all(matches(item, items[0]) for item in value)
    if base in (dict, collections.abc.Mapping):
        return isinstance(value, dict)
    return True


def _spelled(hint: Any) -> str:
    """A type as a user reads it: ``float``, ``int or null``, ``list of str``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_spelled(arg) for arg in args)
    if hint is type(None):
        return "null"
    if origin is typing.Literal:
        return " | ".join(repr(arg) for arg in args)
    if origin in (list, tuple, collections.abc.Sequence) and args:
        return f"a list of {_spelled(args[0])}"
    return getattr(origin or hint, "__name__", str(hint))


def _target_nodes(node: DictConfig, prefix: str = "") -> Iterator[tuple[str, DictConfig]]:
    """Every config node that names a class (``_target_``), with its key."""
    if "_target_" in node:
        yield prefix, node
    for key in node:
        child = node._get_node(key)
        if isinstance(child, DictConfig):
            yield from _target_nodes(child, f"{prefix}.{key}" if prefix else str(key))


def _parameter_types(target: str) -> dict[str, Any]:
    """The annotated parameters of a class or function of the suite (empty for anything else or unreadable)."""
    module_name, _, name = current_target(target).rpartition(".")
    if not module_name.startswith("denoise."):
        return {}
    try:
        obj = getattr(importlib.import_module(module_name), name)
        function = obj.__init__ if inspect.isclass(obj) else obj
        hints = typing.get_type_hints(function)
    except Exception:  # an unimportable target is instantiate's to report, with its own message
        return {}
    return {k: v for k, v in hints.items() if k in inspect.signature(function).parameters}


def argument_problems(cfg: DictConfig) -> list[str]:
    """Every argument of every part of the suite the config builds, against the type its class declares."""
    wrong = []
    for key, node in _target_nodes(cfg):
        hints = _parameter_types(str(node.get("_target_")))
        for name, hint in hints.items():
            if name not in node or isinstance(node._get_node(name), DictConfig):  # a nested part: checked itself
                continue
            try:
                value = OmegaConf.to_container(OmegaConf.create({"v": node[name]}), resolve=True)["v"]
            except Exception:  # an interpolation: SCHEMA and check_mandatory name those
                continue
            if not matches(value, hint):
                owner = str(node.get("_target_")).rsplit(".", 1)[-1]
                wrong.append(f"{key}.{name}={_describe(value)}: expected {_spelled(hint)} (an argument of {owner})")
    return wrong


def value_problems(cfg: DictConfig) -> list[str]:
    """Every value of :data:`SCHEMA` that the config holds and that is of the wrong kind (nothing imported)."""
    wrong = []
    for key, (check, expected) in SCHEMA.items():
        try:
            value = OmegaConf.select(cfg, key, default="<absent>", throw_on_missing=False)
        except Exception as err:  # an interpolation that cannot be resolved: say so with the key
            wrong.append(f"{key}: cannot be resolved ({type(err).__name__}: {str(err).splitlines()[0]})")
            continue
        if isinstance(value, str) and value == "<absent>":
            continue
        if isinstance(value, DictConfig) or OmegaConf.is_list(value):
            value = OmegaConf.to_container(value, resolve=True)
        if not check(value):
            wrong.append(f"{key}={_describe(value)}: expected {expected}")
    return wrong


def _refuse(command: str, wrong: list[str], unread: list[str]) -> None:
    if wrong or unread:
        found = [f"{len(wrong)} config value(s) of the wrong kind"] if wrong else []
        found += [f"{len(unread)} key(s) added with + that nothing reads"] if unread else []
        lines = "\n  ".join(wrong + unread)
        raise ValueError(f"{command}: {' and '.join(found)}, found before anything ran:\n  {lines}")


def early_check(cfg: DictConfig, command: str) -> None:
    """What can be checked before PyTorch is imported (seconds on a loaded machine): every ``???`` still to give,
    and the values of :data:`SCHEMA`; the entry points run it first."""
    check_mandatory(cfg, command)
    _refuse(command, value_problems(cfg), [])


def check_types(cfg: DictConfig, command: str) -> None:
    """Every value of :data:`SCHEMA` and every argument of the parts the config builds, checked, and every key added
    with ``+`` read by something; all that are wrong named in one error."""
    wrong = value_problems(cfg)
    wrong += [problem for problem in argument_problems(cfg) if problem.split("=")[0] not in SCHEMA]
    _refuse(command, wrong, unread_additions(cfg))


def _missing(node: Any, prefix: str = "") -> list[str]:
    if isinstance(node, dict):
        return [key for name, value in node.items() for key in _missing(value, f"{prefix}{name}.")]
    if isinstance(node, list):
        return [key for i, value in enumerate(node) for key in _missing(value, f"{prefix[:-1]}[{i}].")]
    return [prefix[:-1]] if node == "???" else []


def check_mandatory(cfg: DictConfig, command: str) -> None:
    """Every ``???`` the composed config still holds, named in one error with what to set: for ``data.root``
    (``data=sidd``, ``renoir``, ``nind``) the layout the dataset expects and where it is published."""
    missing = _missing(OmegaConf.to_container(cfg, resolve=False))
    if not missing:
        return
    lines = [f"{command} needs {', '.join(missing)}: give {' '.join(f'{key}=...' for key in missing)}"]
    datasets = (OmegaConf.to_container(cfg, resolve=False).get("data") or {}).get("datasets") or {}
    for spec in datasets.values() if "data.root" in missing else []:
        module = str(spec.get("_target_", "")).rpartition(".")[0] if isinstance(spec, dict) else ""
        if module.startswith("denoise.data."):
            layout = getattr(importlib.import_module(module), "LAYOUT", None)
            if layout:
                lines.append(layout)
                name = {"sidd": "sidd_medium"}.get(module.rpartition(".")[2], module.rpartition(".")[2])
                lines.append(f"`denoise-data get {name}` says where to download it and where to put it.")
    raise ValueError("\n".join(lines))
