"""A trained network out of the suite: ONNX with dynamic batch, height and width, checked with onnxruntime.

The graph is the network's own forward, padding included (each network pads to its size multiple and crops
back, :mod:`denoise.models.padding`), so an exported file takes any height and width of at least
:data:`MIN_SIZE` pixels, like the network. Noise-level networks (FFDNet, DRUNet) export with a second input,
``noise_level`` (``B x 1 x H x W``, [0, 1] scale). The file is checked before it is kept: onnxruntime's output
on an odd-sized input must equal PyTorch's within ``tolerance``. :class:`OnnxNetwork` runs an exported file
where the suite runs a network (``denoise-predict model.onnx ...``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from denoise.config.resolvers import require_extra
from denoise.data.files import (
    OutputExistsError,
    commit,
    partial_path,
    refuse_dangling,
    remove_stale_partials,
    writable_folder,
)

log = logging.getLogger(__name__)

#: the smallest height/width an exported graph accepts (reflection padding needs the image larger than the pad)
MIN_SIZE = 16
#: the input size of the export's check: odd, so every padding path runs
CHECK_SIZE = (45, 61)


def export_onnx(
    net: nn.Module, path: str | Path, channels: int, tolerance: float = 1e-4, opset: int | None = None,
    overwrite: bool = False, source: str | Path | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Write ``net`` as ONNX to ``path`` (dynamic batch, height, width) and check it with onnxruntime; returns
    what was written and the check's largest difference. A file that fails the check is not kept; an existing
    ``path`` is replaced only with ``overwrite``, and never when it is ``source`` (the checkpoint itself)."""
    path = Path(path)
    if source is not None and path.exists() and path.resolve() == Path(source).resolve():
        raise OutputExistsError(f"-o {path} is the checkpoint being exported; write the ONNX file elsewhere")
    refuse_dangling(path, "-o", "the .onnx file to write (remove the link, or name another file)")
    if path.is_dir():
        raise IsADirectoryError(f"-o {path} is a folder; expected the .onnx file to write (e.g. {path / 'model.onnx'})")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"-o {path} already exists; pass --overwrite to replace it")
    writable_folder(path.parent, "-o (its folder)")
    remove_stale_partials(path.parent)  # an export killed before it landed left one
    if getattr(net, "onnx_exportable", True) is False:
        raise ValueError(f"{type(net).__name__} cannot be exported to ONNX: {net.onnx_refusal}")
    require_extra("onnxscript", "ONNX export")
    require_extra("onnxruntime", "checking the ONNX export")
    net = net.eval().float().cpu()
    levels = bool(getattr(net, "takes_noise_level", False))
    torch.manual_seed(0)
    example = (torch.rand(2, channels, *CHECK_SIZE),) + ((torch.full((2, 1, *CHECK_SIZE), 25 / 255),) if levels else ())
    batch = torch.export.Dim("batch", min=1, max=1024)
    height = torch.export.Dim("height", min=MIN_SIZE, max=16384)
    width = torch.export.Dim("width", min=MIN_SIZE, max=16384)
    dims = {0: batch, 2: height, 3: width}
    names = ["noisy", "noise_level"] if levels else ["noisy"]
    partial = partial_path(path)
    notes = io.StringIO()
    registry = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registry.level
    registry.setLevel(logging.ERROR)  # "torchvision is not installed. Skipping ...": nothing here uses it
    try:
        with warnings.catch_warnings(), torch.no_grad(), contextlib.redirect_stdout(notes):
            warnings.simplefilter("ignore")  # the exporter's notes on its own internals
            torch.onnx.export(
                net, example, str(partial), dynamo=True, input_names=names, output_names=["denoised"],
                dynamic_shapes=tuple(dims for _ in names), opset_version=opset, optimize=True, external_data=False,
                verbose=False,
            )  # fmt: skip
        log.debug("torch.onnx.export: %s", notes.getvalue())
        difference = check_onnx(net, partial, channels, levels)
        if not difference <= tolerance:  # NaN too
            raise ValueError(
                f"the exported {type(net).__name__} differs from PyTorch by {difference:.2e} (> {tolerance:g}) on "
                f"a {CHECK_SIZE[0]}x{CHECK_SIZE[1]} input; not written"
            )
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        registry.setLevel(level)
    commit(partial, path, overwrite=overwrite)
    return {"path": str(path), "network": type(net).__name__, "inputs": names, "max_abs_difference": difference,
            "bytes": path.stat().st_size}  # fmt: skip


@torch.no_grad()
def check_onnx(net: nn.Module, path: str | Path, channels: int, levels: bool) -> float:
    """The largest absolute difference between onnxruntime and PyTorch on two inputs of sizes other than the
    export's (odd, and a batch of 2)."""
    runner = OnnxNetwork(path)
    largest = 0.0
    for shape in ((1, channels, 37, 53), (2, channels, 64, 40)):
        x = torch.rand(shape)
        inputs = (x, torch.full((shape[0], 1, *shape[2:]), 15 / 255)) if levels else (x,)
        largest = max(largest, float((runner(*inputs) - net(*inputs)).abs().max()))
    return largest


class OnnxNetwork(nn.Module):
    """An exported ``.onnx`` file as a network the suite can run (tiles, ensemble and noise levels included):
    onnxruntime on the CPU (CUDA where onnxruntime-gpu is installed)."""

    size_multiple = 1  # the graph pads itself

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        onnxruntime = __import__(require_extra("onnxruntime", "running an ONNX file"))
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"ONNX file {path} does not exist")
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                     if p in onnxruntime.get_available_providers()]  # fmt: skip
        try:
            self.session = onnxruntime.InferenceSession(str(path), providers=providers)
        except Exception as err:  # onnxruntime raises its own types for truncated or foreign files
            raise ValueError(
                f"ONNX file {path} cannot be loaded: it is truncated, corrupt or not an ONNX model "
                f"({type(err).__name__}: {str(err)[:160]})"
            ) from None
        self.inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if (
            not self.inputs
            or self.inputs[0] != "noisy"
            or set(self.inputs) - {"noisy", "noise_level"}
            or ("denoised" not in outputs)
        ):
            raise ValueError(
                f"ONNX file {path} has inputs {self.inputs} and outputs {outputs}; expected inputs ['noisy'] or "
                "['noisy', 'noise_level'] and an output 'denoised' (a file written by denoise-export)"
            )
        self.takes_noise_level = "noise_level" in self.inputs
        shape = self.session.get_inputs()[0].shape
        if len(shape) != 4:
            raise ValueError(f"ONNX file {path}: its input 'noisy' has {len(shape)} dimensions; expected B x C x H x W")
        channels = shape[1]
        self.channels = int(channels) if isinstance(channels, int) else None

    def forward(self, x: torch.Tensor, noise_level: torch.Tensor | float | None = None) -> torch.Tensor:
        feed = {"noisy": np.ascontiguousarray(x.detach().float().cpu().numpy())}
        if self.takes_noise_level:
            from denoise.models.noise_map import noise_level_map

            level = noise_level_map(0.0 if noise_level is None else noise_level, x.float().cpu())
            feed["noise_level"] = np.ascontiguousarray(level.numpy())
        try:
            (out,) = self.session.run(["denoised"], feed)
        except Exception as err:  # onnxruntime's own error types
            raise ValueError(f"ONNX file {self.path} failed on a {tuple(x.shape)} input: {str(err)[:200]}") from None
        return torch.from_numpy(out).to(x.device)
