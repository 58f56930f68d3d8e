"""Loading checkpoints as untrusted input.

Every load uses ``torch.load(..., weights_only=True)``: tensors and plain containers only, so a crafted file
that would run code when unpickled is refused before anything runs. Networks are rebuilt from the spec
stored in the checkpoint through :func:`denoise.specs.build`, whose allow-list keeps a checkpoint from
naming an arbitrary callable.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from denoise import zoo
from denoise.specs import build, to_plain

#: prefixes that wrappers add to parameter names (DataParallel/DDP, torch.compile, a LightningModule)
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
#: keys under which other toolkits keep a network's weights (BasicSR/KAIR: params_ema, params)
_STATE_KEYS = ("params_ema", "params", "state_dict", "model", "net")


class CheckpointError(ValueError):
    """A checkpoint is missing, unsafe, corrupt, or does not fit the network."""


def safe_load(path: str | Path, key: str = "ckpt_path", mmap: bool = False) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` semantics and errors that name the file. ``mmap``: the
    tensors stay on disk, memory-mapped (checking a checkpoint that Lightning will load anyway reads only its
    structure, not every weight twice)."""
    path = zoo.resolve(path)  # zoo:<name> -> its verified weights; a path stays a path
    if not path.is_file():
        raise FileNotFoundError(f"{key}={path}: no such checkpoint file")
    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except RuntimeError as err:
            if not mmap or "mmap" not in str(err):
                raise
            obj = torch.load(path, map_location="cpu", weights_only=True)  # a legacy (non-zip) file
    except pickle.UnpicklingError as err:
        # torch's own message goes on to suggest weights_only=False, exactly what must not be done with an
        # untrusted file: only the object it refused is quoted
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        what = f" (it names {refused.group(1)})" if refused else ""
        raise CheckpointError(
            f"{key}={path} was refused: it holds pickled Python objects{what}, which could run code when loaded. "
            "Only tensors and plain containers are accepted (weights_only=True). Re-save the weights as a plain "
            "state dict of tensors (torch.save(net.state_dict(), path)) where the file was made."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise CheckpointError(f"{key}={path} is not a readable PyTorch checkpoint: {err}") from err
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{key}={path} holds a {type(obj).__name__}; expected a dict of tensors")
    return dict(obj)


def is_lightning_checkpoint(ckpt: Mapping[str, Any]) -> bool:
    return "state_dict" in ckpt and "hyper_parameters" in ckpt


def _strip(state: Mapping[str, Any], prefix: str | None = None) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name, value in state.items():
        if prefix is not None:
            if not name.startswith(prefix):
                continue
            name = name[len(prefix) :]
        changed = True
        while changed:
            changed = False
            for wrapper in _WRAPPER_PREFIXES:
                if name.startswith(wrapper):
                    name, changed = name[len(wrapper) :], True
        out[name] = value
    return out


def network_state(ckpt: Mapping[str, Any], key: str = "ckpt_path") -> dict[str, torch.Tensor]:
    """The network's own weights from a Lightning checkpoint or a plain/wrapped state dict."""
    if is_lightning_checkpoint(ckpt):
        return _strip(ckpt["state_dict"], prefix="net.")
    if ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return _strip(ckpt)
    for name in _STATE_KEYS:
        inner = ckpt.get(name)
        if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
            return _strip(inner)
    raise CheckpointError(f"{key}: found no network weights (top-level keys: {sorted(ckpt)[:10]})")


def load_network(
    path: str | Path, net_spec: Mapping[str, Any] | None = None, key: str = "ckpt_path"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a network and its weights from ``path``.

    A Lightning checkpoint of this suite carries its network spec; a plain state dict (e.g. an author's
    release) needs ``net_spec`` from ``model=<arch>``. Returns the network in eval mode and the spec used.
    """
    ckpt = safe_load(path, key)
    if is_lightning_checkpoint(ckpt):
        spec = to_plain(ckpt["hyper_parameters"].get("net"))
        if not isinstance(spec, Mapping):
            raise CheckpointError(f"{key}={path}: its hyper_parameters hold no network spec ('net')")
    elif net_spec is not None:
        spec = to_plain(net_spec)
    else:
        raise CheckpointError(
            f"{key}={path} is a plain state dict with no architecture recorded; name it with model=<arch> "
            "(e.g. model=dncnn)"
        )
    net = build(spec, what="model.net")
    state = network_state(ckpt, key)
    try:
        result = net.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches raise even with strict=False
        raise CheckpointError(f"{key}={path} does not fit {spec['_target_']}: {err}") from err
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"{key}={path} does not fit {spec['_target_']}: missing keys {result.missing_keys[:5]}"
            f"{'...' if len(result.missing_keys) > 5 else ''}, unexpected keys {result.unexpected_keys[:5]}"
            f"{'...' if len(result.unexpected_keys) > 5 else ''}"
        )
    return net.eval(), dict(spec)
