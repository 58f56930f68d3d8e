"""Denoising image files with a trained network: the job behind ``denoise-predict CKPT INPUT... -o OUT_DIR``.

INPUT is any mix of image files and folders of images (PNG, JPEG, TIFF, BMP). Each output keeps its input's
name, format, bit depth (8 or 16) and channels: gray, gray with alpha, RGB, or RGBA, the alpha channel copied
through untouched; a photo's EXIF orientation is applied, so the output stands as the input is shown. A network
must return its input's size and channels (an ONNX graph that does not is an error, and nothing is written). A
gray network denoises each colour channel on its own; a colour network sees a gray image as three equal channels.
Images larger than ``--tile`` run tile by tile (:mod:`denoise.inference`), so memory stays bounded for any photo;
``--tile 0`` runs each image whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from denoise.checkpoint import load_network
from denoise.data.console import Steps
from denoise.data.files import UnwritableError, refuse_existing, remove_stale_partials, writable_folder
from denoise.data.io import (
    IMAGE_SUFFIXES,
    ImageReadError,
    array2tensor,
    image_size,
    list_images,
    read_raw,
    tensor2uint,
    write_image,
)
from denoise.inference import (
    Inference,
    ModelOutputError,
    denoise_image,
    prepare_network,
    resolve_device,
    sigma_value,
)
from denoise.inference import Progress as TileProgress
from denoise.inference.precision import check_precision


class NonFiniteOutputError(ValueError):
    """A network gave NaN or inf for an image."""


def collect_inputs(
    inputs: Sequence[str | Path], out_dir: Path, overwrite: bool = False, max_pixels: int | None = None
) -> list[tuple[Path, Path]]:
    """``(input file, output file)`` for every file given and every image in every folder given, each checked
    before any work: readable, within the pixel limit (from its header), and not replacing an existing file
    unless ``overwrite``."""
    jobs: list[tuple[Path, Path]] = []
    for item in map(Path, inputs):
        if item.is_dir():
            jobs += [(path, out_dir / path.name) for path in list_images(item, key=f"input folder {item}")]
        elif item.is_file():
            if item.suffix.lower() not in IMAGE_SUFFIXES:
                raise ImageReadError(f"input {item} is not an image file (expected {', '.join(IMAGE_SUFFIXES)})")
            jobs.append((item, out_dir / item.name))
        else:
            raise FileNotFoundError(f"input {item} does not exist (expected an image file or a folder of images)")
    targets: dict[Path, Path] = {}
    for source, target in jobs:
        if not cv2.haveImageReader(str(source)):  # reads the signature only: bad files fail before any work
            raise ImageReadError(f"input {source} is not a readable image (expected PNG, JPEG, TIFF or BMP data)")
        image_size(source, max_pixels)  # a decompression bomb is refused from its header
        if target in targets:
            raise ValueError(f"{targets[target]} and {source} would both be written to {target}; predict them apart")
        if target.resolve() == source.resolve():
            raise ValueError(f"the output {target} would overwrite its input; choose another -o folder")
        targets[target] = source
    if not overwrite:
        refuse_existing(targets, "--overwrite", "output")
    return jobs


def check_finite(image: torch.Tensor, source: Path, ckpt: str | Path) -> None:
    """A network with a NaN weight, or an ONNX file that overflows, writes black or white images: an error
    naming both files instead."""
    if not bool(torch.isfinite(image).all()):
        bad = int((~torch.isfinite(image)).sum())
        raise NonFiniteOutputError(
            f"{ckpt} produced {bad} non-finite value(s) (NaN or inf) on {source}: its weights or graph are broken "
            "(a NaN weight, an overflow); nothing was written for this image"
        )


def denoise_array(
    net: nn.Module,
    image: np.ndarray,
    channels: int,
    settings: Inference | None = None,
    progress: TileProgress | None = None,
    check: Callable[[torch.Tensor], None] | None = None,
) -> np.ndarray:
    """Denoise an 8/16-bit ``H x W x C`` array (C = 1, 2: gray and alpha, 3 or 4: RGBA) with a
    ``channels``-channel network under ``settings``; the result has the input's dtype and channels, alpha copied
    through. ``check`` sees the float output first."""
    settings = settings or Inference(tile=512, noise_level="estimate")
    alpha = image[..., -1:] if image.shape[2] in (2, 4) else None
    color = image[..., :-1] if alpha is not None else image
    x = array2tensor(color)[None]

    def run(batch: torch.Tensor) -> torch.Tensor:
        return denoise_image(net, batch, settings, progress=progress)

    if x.shape[1] == channels:
        y = run(x)
    elif channels == 1:  # a gray network: each channel on its own
        y = torch.cat([run(x[:, i : i + 1]) for i in range(x.shape[1])], dim=1)
    else:  # a colour network on a gray image: three equal channels in, their mean out
        y = run(x.expand(-1, channels, -1, -1).contiguous()).mean(dim=1, keepdim=True)
    if check is not None:
        check(y)
    out = tensor2uint(y[0], bit_depth=8 if image.dtype == np.uint8 else 16)
    return np.concatenate([out, alpha], axis=2) if alpha is not None else out


def load_predictor(ckpt: str | Path, model: str | None, gray: bool, device: torch.device) -> tuple[nn.Module, int]:
    """The network of a Lightning checkpoint, of a plain state dict with ``--model <config>``, or of an exported
    ``.onnx`` file (run by onnxruntime)."""
    if str(ckpt).endswith(".onnx"):
        from denoise.inference.export import OnnxNetwork

        onnx_net = OnnxNetwork(ckpt)
        return onnx_net, onnx_net.channels or (1 if gray else 3)
    net_spec = None
    if model is not None:
        from denoise.tasks.compose import model_specs

        net_spec = model_specs(channels=1 if gray else 3, names=[model])[model]
    net, spec = load_network(ckpt, net_spec, key="CKPT")
    channels = int(spec.get("in_channels", 1 if gray else 3))
    return net.to(device), channels


def parse_noise_level(value: str | float) -> str | float:
    """``--noise-level``: ``estimate`` or a non-negative sigma on the 0-255 scale."""
    if value == "estimate":
        return value
    sigma = sigma_value(value)
    if sigma is None:
        raise ValueError(f"--noise-level {value}: expected estimate or a sigma >= 0 on the 0-255 scale")
    return sigma


def predict(
    ckpt: str | Path,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    tile: int = 512,
    overlap: int = 32,
    ensemble: bool = False,
    model: str | None = None,
    gray: bool = False,
    device: str = "auto",
    precision: str = "fp32",
    noise_level: str | float = "estimate",
    memory_budget_mb: float | None = None,
    tlc: int | None = None,
    tile_batch: int = 1,
    overwrite: bool = False,
    max_pixels: int | None = None,
) -> list[Path]:
    """Denoise every input into ``out_dir``; returns the files written. Every input is checked before any
    work starts, so a typo fails in a second, not after an hour. ``noise_level``: what a noise-level network
    (FFDNet, DRUNet) is given, ``estimate`` (per image) or a sigma on the 0-255 scale."""
    if tile < 0 or overlap < 0:
        raise ValueError(f"--tile {tile} --overlap {overlap}: expected numbers >= 0")
    check_precision(precision, key="--precision")
    settings = Inference(tile=tile, overlap=overlap, ensemble=ensemble, precision=precision,
                         noise_level=parse_noise_level(noise_level), memory_budget_mb=memory_budget_mb,
                         tile_batch=tile_batch, tlc=bool(tlc), tlc_size=tlc)  # fmt: skip
    out_dir = Path(out_dir).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise UnwritableError(f"-o={out_dir} is a file; expected a folder to write into")
    jobs = collect_inputs(inputs, out_dir, overwrite, max_pixels)
    net, channels = load_predictor(ckpt, model, gray, resolve_device(device))
    writable_folder(out_dir, "-o")  # created only now: a call that fails before writes nothing
    remove_stale_partials(out_dir)  # images of an earlier call that was killed mid-write
    prepare_network(net, settings, channels)  # TLC, when asked for
    written = []
    with Steps("denoise-predict", len(jobs), "images") as progress, torch.inference_mode():
        for source, target in jobs:

            def on_tile(done: int, total: int, name: str = source.name) -> None:
                progress.advance(0, f"{name}, tile {done}/{total}" if total > 1 else name)

            image = read_raw(source, max_pixels)
            try:
                checked = lambda y, source=source: check_finite(y, source, ckpt)  # noqa: E731
                result = denoise_array(net, image, channels, settings, on_tile, check=checked)
            except ModelOutputError as err:
                raise ModelOutputError(f"{ckpt} on {source}: {err}; nothing was written for it") from None
            depth = 8 if image.dtype == np.uint8 else 16
            written.append(write_image(target, result, bit_depth=depth, overwrite=overwrite))
            progress.advance(1, source.name)
    return written
