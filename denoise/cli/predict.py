"""``denoise-predict CKPT INPUT... -o OUT_DIR [--tile 512 --overlap 32 --ensemble] [--precision fp32]``: denoise
image files and folders with a trained checkpoint (:mod:`denoise.tasks.prediction`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from denoise.cli import add_version

#: denoise.inference.precision.EVAL_PRECISIONS, repeated so that --help answers without loading PyTorch (a test
#: keeps them equal)
EVAL_PRECISIONS = ("fp32", "bf16", "fp16")


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1 (a limit of 0 or -5 pixels means nothing)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number (expected >= 1)")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="denoise-predict",
        description="Denoise image files, or folders of them, with a trained network: a checkpoint of this suite, a "
        "zoo:<name>, an exported .onnx file, or the authors' plain state dict with --model. Each output keeps its "
        "input's name, format, bit depth and channels (alpha copied through), upright.",
    )
    add_version(parser)
    parser.add_argument(
        "ckpt", help="a .ckpt of this suite, zoo:<name>, an exported .onnx file, or a plain state dict with --model"
    )
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
    parser.add_argument(
        "--noise-level",
        default="estimate",
        help="for networks that take a noise level (FFDNet, DRUNet): estimate (per image, default) or a sigma on "
        "the 0-255 scale, e.g. 25",
    )
    parser.add_argument(
        "--tlc",
        type=int,
        metavar="CROP",
        help="TLC: make global pooling/attention (NAFNet, PRIDNet, Restormer) local, for a network trained on CROP "
        "x CROP crops",
    )
    parser.add_argument(
        "--tile-batch", type=int, default=1, help="tiles a forward (a GPU runs a batch about as fast as one)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace files already in -o (default: refuse)")
    parser.add_argument(
        "--max-pixels",
        type=positive_int,
        help="refuse images above this many pixels, read from their headers before decoding (default 150 million; "
        "DENOISE_MAX_PIXELS sets it for every command)",
    )
    parser.add_argument(
        "--memory-budget-mb",
        type=float,
        help="on the CPU: tile images whose estimated activations exceed this many MB (on a GPU an out-of-memory "
        "error is retried in tiles anyway)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from denoise.tasks.prediction import predict

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
            noise_level=args.noise_level,
            memory_budget_mb=args.memory_budget_mb,
            tlc=args.tlc,
            tile_batch=args.tile_batch,
            overwrite=args.overwrite,
            max_pixels=args.max_pixels,
        )
    except (OSError, ValueError) as err:  # CheckpointError, ImageReadError: ValueErrors
        print(f"denoise-predict: error: {err}", file=sys.stderr)
        return 2
    print(f"denoised {len(written)} image{'s' * (len(written) != 1)} into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
