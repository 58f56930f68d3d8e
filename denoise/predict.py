"""Denoise image files with a trained network.

``python -m denoise.predict CKPT INPUT... -o OUT_DIR [--tile 512 --overlap 32 --ensemble]`` (also installed as
``denoise-predict``). INPUT is any mix of image files and folders of images (PNG, JPEG, TIFF, BMP). Each
output keeps its input's name, format, bit depth (8 or 16) and channels: gray, RGB, or RGBA with the alpha
channel copied through untouched. A gray network denoises each colour channel on its own; a colour network
sees a gray image as three equal channels. Images larger than ``--tile`` run tile by tile
(:mod:`denoise.inference`), so memory stays bounded for any photo; ``--tile 0`` runs each image whole.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from denoise.checkpoint import CheckpointError, load_network
from denoise.data.io import IMAGE_SUFFIXES, ImageReadError, list_images, read_raw, to_float, write_image
from denoise.inference import Progress as TileProgress
from denoise.inference import denoise_image, resolve_device
from denoise.precision import EVAL_PRECISIONS, check_precision


def collect_inputs(inputs: Sequence[str | Path], out_dir: Path) -> list[tuple[Path, Path]]:
    """``(input file, output file)`` for every file given and every image in every folder given."""
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
        if target in targets:
            raise ValueError(f"{targets[target]} and {source} would both be written to {target}; predict them apart")
        if target.resolve() == source.resolve():
            raise ValueError(f"the output {target} would overwrite its input; choose another -o folder")
        targets[target] = source
    return jobs


def denoise_array(
    net: nn.Module,
    image: np.ndarray,
    channels: int,
    tile: int = 512,
    overlap: int = 32,
    ensemble: bool = False,
    progress: TileProgress | None = None,
    precision: str = "fp32",
) -> np.ndarray:
    """Denoise an 8/16-bit ``H x W x C`` array (C = 1, 3 or 4) with a ``channels``-channel network; the result
    has the input's dtype and channels, alpha copied through."""
    scale = 255.0 if image.dtype == np.uint8 else 65535.0
    alpha = image[..., 3:] if image.shape[2] == 4 else None
    color = image[..., :3] if alpha is not None else image
    x = torch.from_numpy(to_float(color)).permute(2, 0, 1)[None]

    def run(batch: torch.Tensor) -> torch.Tensor:
        return denoise_image(
            net, batch, tile=tile, overlap=overlap, ensemble=ensemble, progress=progress, precision=precision
        )

    if x.shape[1] == channels:
        y = run(x)
    elif channels == 1:  # a gray network: each channel on its own
        y = torch.cat([run(x[:, i : i + 1]) for i in range(x.shape[1])], dim=1)
    else:  # a colour network on a gray image: three equal channels in, their mean out
        y = run(x.expand(-1, channels, -1, -1).contiguous()).mean(dim=1, keepdim=True)
    out = np.round(y[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy() * scale).astype(image.dtype)
    return np.concatenate([out, alpha], axis=2) if alpha is not None else out


def load_predictor(ckpt: str | Path, model: str | None, gray: bool, device: torch.device) -> tuple[nn.Module, int]:
    """The network of a Lightning checkpoint, or of a plain state dict with ``--model <config>``."""
    net_spec = None
    if model is not None:
        from denoise.tasks import model_specs

        net_spec = model_specs(channels=1 if gray else 3, names=[model])[model]
    net, spec = load_network(ckpt, net_spec, key="CKPT")
    channels = int(spec.get("in_channels", 1 if gray else 3))
    return net.to(device), channels


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
) -> list[Path]:
    """Denoise every input into ``out_dir``; returns the files written. Every input is checked before any
    work starts, so a typo fails in a second, not after an hour."""
    if tile < 0 or overlap < 0:
        raise ValueError(f"--tile {tile} --overlap {overlap}: expected numbers >= 0")
    check_precision(precision, key="--precision")
    out_dir = Path(out_dir)
    jobs = collect_inputs(inputs, out_dir)
    net, channels = load_predictor(ckpt, model, gray, resolve_device(device))
    written = []
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, transient=True) as progress, torch.inference_mode():
        files = progress.add_task("files", total=len(jobs))
        tiles = progress.add_task("tiles", total=1)
        for source, target in jobs:
            progress.update(tiles, description=f"tiles of {source.name}", completed=0, total=1)

            def on_tile(done: int, total: int) -> None:
                progress.update(tiles, completed=done, total=total)

            image = read_raw(source)
            result = denoise_array(net, image, channels, tile, overlap, ensemble, on_tile, precision)
            written.append(write_image(target, result, bit_depth=8 if image.dtype == np.uint8 else 16))
            progress.advance(files)
    return written


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="denoise-predict",
        description="Denoise image files (or folders of them) with a trained checkpoint.",
    )
    parser.add_argument("ckpt", help="a Lightning .ckpt of this suite, or a plain state dict with --model")
    parser.add_argument("inputs", nargs="+", help="image files and/or folders of images")
    parser.add_argument("-o", "--out", required=True, help="the folder to write the denoised images to")
    parser.add_argument("--tile", type=int, default=512, help="tile size in pixels; 0: whole images (default 512)")
    parser.add_argument("--overlap", type=int, default=32, help="overlap between tiles in pixels (default 32)")
    parser.add_argument("--ensemble", action="store_true", help="average over the 8 flips/rotations (8x slower)")
    parser.add_argument("--model", help="for a plain state dict: its architecture, a conf/model name (e.g. dncnn)")
    parser.add_argument("--gray", action="store_true", help="with --model: the network is single-channel")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1 ...")
    parser.add_argument(
        "--precision",
        default="fp32",
        choices=EVAL_PRECISIONS,
        help="fp32 (IEEE float32, the same result on every device; default) or bf16/fp16 (faster on a GPU)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        written = predict(
            args.ckpt,
            args.inputs,
            args.out,
            tile=args.tile,
            overlap=args.overlap,
            ensemble=args.ensemble,
            model=args.model,
            gray=args.gray,
            device=args.device,
            precision=args.precision,
        )
    except (CheckpointError, ImageReadError, FileNotFoundError, NotADirectoryError, ValueError) as err:
        print(f"denoise-predict: error: {err}", file=sys.stderr)
        return 2
    print(f"denoised {len(written)} image{'s' * (len(written) != 1)} into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
