"""The model-width part of ``hparams_search=optuna``, which depends on the architecture.

Hydra's Optuna sweeper takes fixed parameter names, but the width of each network has its own name
(``channels`` for REDNet, DnCNN, FFDNet and the autoencoder, ``width`` for PRIDNet and NAFNet, ``widths`` for
MWCNN and DRUNet, ``dim`` for Restormer, ``embed_dim`` for SwinIR).
The sweeper calls :func:`model_width` once per trial (``custom_search_space``) to search half, the same and
twice the configured width under the right name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: width parameters of the network spec, in the order they are looked for
WIDTH_KEYS = ("channels", "width", "widths", "dim", "embed_dim")
#: multiples of the configured width that a trial may pick
SCALES = (0.5, 1.0, 2.0)


def width_choices(value: Any) -> list[Any]:
    """Half, the same and twice ``value``: ints stay ints (at least 1), lists scale elementwise (as text, the
    form Optuna can store and Hydra parses back into a list)."""
    if isinstance(value, bool):
        raise TypeError(f"a width cannot be a bool, got {value!r}")
    if isinstance(value, int):
        return sorted({max(1, round(value * s)) for s in SCALES})
    if isinstance(value, float):
        return [value * s for s in SCALES]
    if isinstance(value, list | tuple):
        return ["[" + ",".join(str(max(1, round(int(v) * s))) for v in value) + "]" for s in SCALES]
    raise TypeError(f"cannot scale a width of type {type(value).__name__}: {value!r}")


def width_key(net: Mapping[str, Any]) -> str:
    """The name of the network's width parameter in its spec (``model.net.<key>``)."""
    for key in WIDTH_KEYS:
        if key in net:
            return key
    raise ValueError(
        f"model.net ({net.get('_target_')}) has none of the width parameters {WIDTH_KEYS}; "
        "set hydra.sweeper.custom_search_space=null to search without the width"
    )


def model_width(cfg: Any, trial: Any) -> None:
    """Optuna ``custom_search_space``: suggest ``model.net.<width key>`` for this trial."""
    net = cfg.model.net
    key = width_key(net)
    if f"model.net.{key}" in trial.user_attrs:  # fixed on the command line: not searched
        return
    value = net[key]
    if hasattr(value, "_content") or isinstance(value, list | tuple):  # a ListConfig
        value = list(value)
    trial.suggest_categorical(f"model.net.{key}", width_choices(value))
