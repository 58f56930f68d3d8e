"""The config's values checked against their types before anything starts (no logger, no data, no network): a
``trainer.max_epochs=abc`` is one message naming the key, the value and what was expected, not a ``TypeError``
from deep inside Lightning after a W&B run has begun.

A validation pass over the composed config rather than Hydra structured configs: the config groups stay plain
YAML that users copy and edit, and a key missing from a group (a user's own trainer config) is not an error
here; only a value of the wrong kind is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

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
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", type(None): "null"}
    return f"{value!r} ({kind.get(type(value), type(value).__name__)})"


def check_types(cfg: DictConfig, command: str) -> None:
    """Every value of :data:`SCHEMA` that the config holds, checked; all that are wrong named in one error."""
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
    if wrong:
        raise ValueError(f"{command}: {len(wrong)} config value(s) of the wrong kind, found before anything ran:\n  "
                         + "\n  ".join(wrong))  # fmt: skip
