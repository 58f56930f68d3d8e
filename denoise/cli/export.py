"""``denoise-export CKPT -o model.onnx [--model NAME --gray]``: a trained network as ONNX (dynamic batch,
height and width), checked against PyTorch with onnxruntime before it is written."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from denoise.cli import add_version

DESCRIPTION = (
    "Export a trained network as ONNX (any batch, height and width), checked against PyTorch with onnxruntime "
    "before it is written."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="denoise-export", description=DESCRIPTION)
    add_version(parser)
    parser.add_argument("ckpt", help="a Lightning .ckpt of this suite, zoo:<name>, or a plain state dict with --model")
    parser.add_argument("-o", "--out", required=True, help="the .onnx file to write")
    parser.add_argument("--model", help="for a plain state dict: its architecture, a conf/model name (e.g. dncnn)")
    parser.add_argument("--gray", action="store_true", help="with --model: the network is single-channel")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest difference allowed from PyTorch")
    parser.add_argument("--opset", type=int, help="the ONNX opset (default: the exporter's)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing -o file (never the checkpoint)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        import torch

        from denoise.inference.export import export_onnx
        from denoise.tasks.prediction import load_predictor

        net, channels = load_predictor(args.ckpt, args.model, args.gray, torch.device("cpu"))
        written = export_onnx(
            net, args.out, channels, tolerance=args.tolerance, opset=args.opset, overwrite=args.overwrite,
            source=None if str(args.ckpt).startswith("zoo:") else args.ckpt,
        )  # fmt: skip
    except (ImportError, ValueError, OSError) as err:  # CheckpointError is a ValueError
        print(f"denoise-export: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(written, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
