"""Scores that do not depend on the device: evaluate.py of the DnCNN authors' weights on Set12 and BSD68, on the
CPU and on the GPU (and, for the record, with the network in bf16), side by side.

Goal (issue 12): the GPU's fp32 PSNR and SSIM equal the CPU's within 1e-4, for the network and the noisy input.
Before the fix the GPU gave DnCNN SSIM 0.8384 on Set12 against the CPU's 0.8622 (TF32 convolutions in SSIM).

    python bench/parity.py [--devices cpu cuda] [--sets set12 bsd68] [--json bench/results/parity.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from denoise.evaluation.report import write_json
from denoise.inference import device_name
from denoise.tasks import compose_config, evaluate

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-4
#: the DnCNN authors' weights (gray, sigma 25) as a plain state dict, under the data folder
WEIGHTS = Path("reference") / "dncnn_sigma25_gray.pt"


def default_data_dir() -> Path:
    """``DATA_DIR``, else the project's data/ (paths.data_dir), else ../shared/data beside the checkout."""
    for candidate in (os.environ.get("DATA_DIR"), ROOT / "data", ROOT.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "set12").is_dir():
            return Path(candidate)
    return ROOT / "data"


KEYS = ("test/psnr", "test/ssim", "test/psnr_noisy", "test/ssim_noisy")


def score(data: Path, test_set: str, device: str, precision: str, out: Path) -> dict[str, Any]:
    overrides = [
        "model=dncnn",
        f"ckpt_path={data / WEIGHTS}",
        f"data.test_dirs=[{data / test_set}]",
        "data.grayscale=true",
        "noise.sigma=25",
        f"device={device}",
        f"inference.precision={precision}",
        "grid_images=0",
    ]
    start = time.perf_counter()
    results = evaluate(compose_config("evaluate", overrides, out))
    return {**{k: results[k] for k in KEYS}, "seconds": time.perf_counter() - start, "images": results["images"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    parser.add_argument("--devices", nargs="+", default=default_devices)
    parser.add_argument("--sets", nargs="+", default=["set12", "bsd68"])
    parser.add_argument("--data-dir", type=Path, default=None, help="holds set12/ bsd68/ reference/")
    parser.add_argument(
        "--reference", type=Path, default=None,
        help="stored CPU fp32 scores (bench/reference/parity_cpu.json) to compare with when the CPU is not run",
    )  # fmt: skip
    parser.add_argument("--write-reference", type=Path, default=None, help="store this run's CPU fp32 scores here")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "parity.json")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("denoise").setLevel(logging.WARNING)
    data = args.data_dir or default_data_dir()
    if not (data / WEIGHTS).is_file():
        raise SystemExit(f"the DnCNN weights are missing: {data / WEIGHTS} (give --data-dir or DATA_DIR)")

    runs = [(d, "fp32") for d in args.devices] + [(d, "bf16") for d in args.devices if d != "cpu"]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for test_set in args.sets:
            for device, precision in runs:
                scores = score(data, test_set, device, precision, Path(tmp) / f"{test_set}-{device}-{precision}")
                rows.append({"set": test_set, "device": device, "precision": precision, **scores})
    reference = {row["set"]: row for row in rows if row["device"] == "cpu" and row["precision"] == "fp32"}
    if args.reference is not None:  # the CPU's scores, computed once and stored: every row is held against them
        stored = json.loads(args.reference.read_text())["scores"]
        reference = {name: stored[name] for name in args.sets if name in stored}
    for row in rows:
        base = reference.get(row["set"])
        row["max_abs_diff_vs_cpu"] = max(abs(row[k] - base[k]) for k in KEYS) if base else None
        row["within_tolerance"] = (
            None if base is None or row["precision"] != "fp32" else bool(row["max_abs_diff_vs_cpu"] <= TOLERANCE)
        )
    if args.write_reference is not None:  # store the CPU's fp32 scores for later GPU-only runs
        cpu = {
            row["set"]: {k: row[k] for k in KEYS}
            for row in rows
            if row["device"] == "cpu" and row["precision"] == "fp32"
        }
        write_json(args.write_reference, {"what": "evaluate.py, DnCNN authors' weights, sigma 25, CPU fp32",
                                          "torch": torch.__version__, "scores": cpu})  # fmt: skip

    table = Table(title=f"DnCNN (authors' weights), sigma 25: evaluate.py per device (tolerance {TOLERANCE})")
    for column in (
        "set",
        "device",
        "net precision",
        "PSNR",
        "SSIM",
        "noisy PSNR",
        "noisy SSIM",
        "max |diff| vs CPU",
        "s",
    ):
        table.add_column(column, justify="left" if column in ("set", "device", "net precision") else "right")
    for row in rows:
        diff = row["max_abs_diff_vs_cpu"]
        table.add_row(
            row["set"], row["device"], row["precision"], f"{row['test/psnr']:.4f}", f"{row['test/ssim']:.4f}",
            f"{row['test/psnr_noisy']:.4f}", f"{row['test/ssim_noisy']:.4f}",
            "-" if diff is None else f"{diff:.2e}", f"{row['seconds']:.1f}",
        )  # fmt: skip
    Console().print(table)
    names = {d: device_name(torch.device(d)) for d in args.devices}
    write_json(args.json, {"benchmark": "parity", "devices": names, "tolerance": TOLERANCE, "rows": rows})
    Console().print(f"wrote {args.json}")
    bad = [row for row in rows if row["within_tolerance"] is False]
    if bad:
        raise SystemExit(f"{len(bad)} fp32 result(s) differ from the CPU's by more than {TOLERANCE}")


if __name__ == "__main__":
    main()
