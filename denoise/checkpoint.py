"""Loading checkpoints as untrusted input.

Every load uses ``torch.load(..., weights_only=True)``: tensors and plain containers only, so a crafted file
that would run code when unpickled is refused before anything runs. Networks are rebuilt from the spec
stored in the checkpoint through :func:`denoise.config.specs.build`, whose allow-list keeps a checkpoint from
naming an arbitrary callable.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch import nn

from denoise import zoo
from denoise.config.specs import build, to_plain
from denoise.data.files import atomic_open

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
        if "Unsupported global" not in str(err):  # bytes that are no pickle of objects: random, cut off
            reason = re.search(r"WeightsUnpickler error:\s*(.+)", str(err))  # not torch's advice to load unsafely
            raise CheckpointError(_unreadable(key, path, reason.group(1) if reason else "not a pickle")) from None
        # torch's own message goes on to suggest weights_only=False, exactly what must not be done with an
        # untrusted file: only the object it refused is quoted
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        what = f" (it names {refused.group(1)})" if refused else ""
        raise CheckpointError(
            f"{key}={path} was refused: it holds pickled Python objects{what}, which could run code when loaded. "
            "Only tensors and plain containers are accepted (weights_only=True). Re-save the weights as a plain "
            "state dict of tensors (torch.save(net.state_dict(), path)) where the file was made."
        ) from None
    except Exception as err:  # random or cut-off bytes fail anywhere in torch's readers
        raise CheckpointError(_unreadable(key, path, err)) from None
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{key}={path} holds a {type(obj).__name__}; expected a dict of tensors")
    return dict(obj)


def _unreadable(key: str, path: Path, err: BaseException | str) -> str:
    reason = err if isinstance(err, str) else f"{type(err).__name__}: {str(err)[:120]}"
    return (
        f"{key}={path} is not a readable PyTorch checkpoint: it is truncated, corrupt, or not a file that torch.save "
        f"wrote ({reason})"
    )


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


def check_shapes(spec: Mapping[str, Any], state: Mapping[str, torch.Tensor], source: str) -> None:
    """Build the network on the meta device (no memory) and compare its weights' names and shapes with
    ``state`` before the real network is allocated: a checkpoint whose spec asks for 10^9 channels is refused
    here, not by the allocator."""
    try:
        with torch.device("meta"):
            probe = build(spec, what="model.net", kind="network")
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{source}: its network spec cannot be built: {err}") from err
    expected = {name: tuple(value.shape) for name, value in probe.state_dict().items()}
    del probe
    wrong = [
        f"{name} {tuple(value.shape)} (the network's {expected[name]})"
        for name, value in state.items()
        if name in expected and (not isinstance(value, torch.Tensor) or tuple(value.shape) != expected[name])
    ]
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if wrong or missing or unexpected:
        raise CheckpointError(
            f"{source} does not fit {spec['_target_']}: "
            + "; ".join(
                part
                for part in (
                    f"shapes differ: {', '.join(wrong[:5])}{'...' if len(wrong) > 5 else ''}" if wrong else "",
                    f"missing keys {missing[:5]}{'...' if len(missing) > 5 else ''}" if missing else "",
                    f"unexpected keys {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}" if unexpected else "",
                )
                if part
            )
        )


def load_network(
    path: str | Path, net_spec: Mapping[str, Any] | None = None, key: str = "ckpt_path"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a network and its weights from ``path``.

    A Lightning checkpoint of this suite carries its network spec; a plain state dict (e.g. an author's
    release) needs ``net_spec`` from ``model=<arch>``. Returns the network in eval mode and the spec used.
    """
    ckpt = safe_load(path, key)
    if is_lightning_checkpoint(ckpt):
        hparams = ckpt["hyper_parameters"]
        spec = to_plain(hparams.get("net")) if isinstance(hparams, Mapping) else None
        if not isinstance(spec, Mapping):
            raise CheckpointError(f"{key}={path}: its hyper_parameters hold no network spec ('net')")
    elif net_spec is not None:
        spec = to_plain(net_spec)
    else:
        raise CheckpointError(
            f"{key}={path} is a plain state dict with no architecture recorded; name it with model=<arch> "
            "(e.g. model=dncnn)"
        )
    state = network_state(ckpt, key)
    check_shapes(spec, state, f"{key}={path}")
    net = build(spec, what="model.net", kind="network")
    net.load_state_dict(state)  # names and shapes already checked against the meta-device build
    return net.eval(), dict(spec)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, but written beside the target, fsynced and renamed
    (:func:`denoise.data.files.atomic_open`): Lightning's own writes to ``$TMPDIR`` and moves the file, which
    across filesystems truncates ``last.ckpt`` and copies into it, so a kill or a full disk mid-copy leaves a
    broken checkpoint and nothing to resume from."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        if "://" in str(path) and not str(path).startswith("file://"):  # remote storage: fsspec's own transaction
            super().save_checkpoint(checkpoint, path)
            return
        target = Path(str(path).removeprefix("file://"))
        writer: _RecordingWriter | None = None
        try:
            with atomic_open(target, "wb") as handle:
                writer = _RecordingWriter(handle)
                torch.save(checkpoint, writer)
        except (RuntimeError, OSError) as err:  # torch reports the writer's OSError as "unexpected pos"
            raise _save_error(target, (writer.error if writer is not None else None) or err) from None


class _RecordingWriter:
    """A file handle for ``torch.save`` that keeps the OSError of a failed write (a full disk, a quota), which torch
    itself turns into ``RuntimeError: [enforce fail at inline_container.cc] unexpected pos``."""

    def __init__(self, handle: Any) -> None:
        self.handle, self.error, self.written = handle, None, 0

    def write(self, data: bytes) -> int:
        try:
            count = self.handle.write(data)
        except OSError as err:
            self.error = err
            raise
        self.written += len(data)
        return count

    def flush(self) -> None:
        self.handle.flush()


def _save_error(target: Path, err: BaseException) -> BaseException:
    """A failed checkpoint save as one line that names the folder, the free space and what is kept."""
    import errno
    import shutil

    if not isinstance(err, OSError):
        return err
    try:
        free = f"{shutil.disk_usage(target.parent).free / 2**20:,.1f} MiB free"
    except OSError:
        free = "free space unknown"
    full = err.errno in (errno.ENOSPC, errno.EDQUOT)
    what = "the disk is full" if full else (err.strerror or str(err))
    error = OSError(
        f"cannot save the checkpoint {target}: {what} ({target.parent}: {free}); the previous checkpoint there is "
        "kept whole. Free space (or move paths.log_dir) and resume with ckpt_path=last"
    )
    error.errno = err.errno
    return error
