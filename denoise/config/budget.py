"""The size budget of a network built from a spec: a checkpoint is untrusted input, so an 8 KB file must not make
the suite build millions of modules or allocate a network larger than any memory. Two checks, both before any
memory is allocated: every number in the spec is at most :data:`MAX_ARGUMENT` (a constructor may allocate from a
number before it builds a module: SwinIR's drop-path rates are ``sum(depths)`` floats), and the network is built
on the meta device while its modules and parameters are counted, stopped at the limit."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

#: the largest network a spec may describe unless DENOISE_MAX_PARAMETERS / DENOISE_MAX_MODULES say otherwise: far
#: above every network of the suite (at most 116 million parameters, NAFNet-width64; 611 modules, PRIDNet), far
#: below what an 8 KB checkpoint could otherwise ask for (DnCNN with depth=5000000: 15 million modules)
MAX_PARAMETERS = 1_000_000_000
MAX_MODULES = 10_000
PARAMETERS_ENV, MODULES_ENV = "DENOISE_MAX_PARAMETERS", "DENOISE_MAX_MODULES"
#: the largest number a network spec may hold (channels, depths, blocks, widths: every network of the suite uses
#: at most 512), and the longest list
MAX_ARGUMENT, MAX_LIST = 65_536, 1_024
ARGUMENT_ENV = "DENOISE_MAX_NETWORK_ARGUMENT"


class NetworkTooLargeError(ValueError):
    """A network spec asks for more parameters or modules than the budget allows."""


def _limit(env: str, default: int) -> int:
    value = os.environ.get(env)
    if value is None:
        return default
    try:
        limit = int(float(value))
    except ValueError:
        limit = 0
    if limit <= 0:
        raise NetworkTooLargeError(f"{env}={value!r}: expected a positive number, e.g. {default}")
    return limit


@contextlib.contextmanager
def network_budget(what: str) -> Iterator[None]:
    """Count every module constructed and every parameter and buffer element registered while the block runs, and
    stop the build as soon as either passes its limit: a spec is sized while it is built on the meta device, so
    an absurd one costs at most the limit's worth of bookkeeping, never memory or minutes."""
    from torch import nn
    from torch.nn.modules import module as module_hooks

    max_parameters, max_modules = _limit(PARAMETERS_ENV, MAX_PARAMETERS), _limit(MODULES_ENV, MAX_MODULES)
    counts = {"modules": 0, "elements": 0}
    original = nn.Module.__init__

    def refuse(amount: str, env: str) -> NetworkTooLargeError:
        limit = f"the limit on a network's size ({env} raises it)"
        return NetworkTooLargeError(
            f"{what} asks for more than {amount}: {limit}; refused before anything was allocated"
        )

    def counting_init(self: nn.Module, *args: object, **kwargs: object) -> None:
        counts["modules"] += 1
        if counts["modules"] > max_modules:
            raise refuse(f"{max_modules:,} modules", MODULES_ENV)
        original(self, *args, **kwargs)

    def on_tensor(module: nn.Module, name: str, tensor: object) -> None:
        counts["elements"] += int(getattr(tensor, "numel", lambda: 0)())
        if counts["elements"] > max_parameters:
            raise refuse(f"{max_parameters:,} parameters", PARAMETERS_ENV)

    hooks = [
        module_hooks.register_module_parameter_registration_hook(on_tensor),
        module_hooks.register_module_buffer_registration_hook(on_tensor),
    ]
    nn.Module.__init__ = counting_init  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Module.__init__ = original  # type: ignore[method-assign]
        for hook in hooks:
            hook.remove()


def check_numbers(value: Any, key: str, largest: int) -> None:
    """Every number in a spec's argument (lists included) at most ``largest`` in size, every list at most
    :data:`MAX_LIST` long."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int | float):
        if not abs(value) <= largest:
            limit = f"the most a network's argument may be ({ARGUMENT_ENV} raises it)"
            raise NetworkTooLargeError(f"{key}={value!r} is larger than {largest:,}, {limit}; refused before building")
        return
    if isinstance(value, list | tuple):
        if len(value) > MAX_LIST:
            limit = f"a network's argument lists at most {MAX_LIST:,}"
            raise NetworkTooLargeError(f"{key} lists {len(value):,} values; {limit}; refused before building")
        for index, item in enumerate(value):
            check_numbers(item, f"{key}[{index}]", largest)
    elif isinstance(value, dict):
        for name, item in value.items():
            check_numbers(item, f"{key}.{name}", largest)


def sized_build(target: Callable[..., Any], what: str, name: str, *args: Any, **params: Any) -> Any:
    """``target(*args, **params)``, a network, after its numbers are checked (:func:`check_numbers`) and it has been
    built on the meta device within the budget (:func:`network_budget`); a build that is already on the meta device
    is the check itself."""
    import torch

    largest = _limit(ARGUMENT_ENV, MAX_ARGUMENT)
    for key, value in params.items():
        check_numbers(value, f"{what}.{key}", largest)
    with network_budget(f"{what} ({name})"):
        if torch.get_default_device().type == "meta":
            return target(*args, **params)
        with torch.device("meta"):
            target(*args, **params)
    return target(*args, **params)
