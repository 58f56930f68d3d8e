"""Scores that do not depend on the device: evaluate.py of the DnCNN authors' weights on Set12 and BSD68, on the
CPU and on the GPU (and, for the record, with the network in bf16), side by side.

Goal (issue 12): the GPU's fp32 PSNR and SSIM equal the CPU's within 1e-4, for the network and the noisy input.
Before the fix the GPU gave DnCNN SSIM 0.8384 on Set12 against the CPU's 0.8622 (TF32 convolutions in SSIM).

    python bench/parity.py [--devices cpu cuda] [--sets set12 bsd68] [--json bench/results/parity.json]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from denoise.inference import device_name
from denoise.report import write_json
from denoise.tasks import compose_config, evaluate

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
WEIGHTS = DATA / "reference" / "dncnn_sigma25_gray.pt"
TOLERANCE = 1e-4
KEYS = ("test/psnr", "test/ssim", "test/psnr_noisy", "test/ssim_noisy")


def score(test_set: str, device: str, precision: str, out: Path) -> dict[str, Any]:
    overrides = [
        "model=dncnn",
        f"ckpt_path={WEIGHTS}",
        f"data.test_dirs=[{DATA / test_set}]",
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
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "parity.json")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("denoise").setLevel(logging.WARNING)
    if not WEIGHTS.is_file():
        raise SystemExit(f"the DnCNN weights are missing: {WEIGHTS} (../shared/data/reference)")

    runs = [(d, "fp32") for d in args.devices] + [(d, "bf16") for d in args.devices if d != "cpu"]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for test_set in args.sets:
            for device, precision in runs:
                scores = score(test_set, device, precision, Path(tmp) / f"{test_set}-{device}-{precision}")
                rows.append({"set": test_set, "device": device, "precision": precision, **scores})
    reference = {row["set"]: row for row in rows if row["device"] == "cpu" and row["precision"] == "fp32"}
    for row in rows:
        base = reference.get(row["set"])
        row["max_abs_diff_vs_cpu"] = max(abs(row[k] - base[k]) for k in KEYS) if base else None
        row["within_tolerance"] = (
            None if base is None or row["precision"] != "fp32" else bool(row["max_abs_diff_vs_cpu"] <= TOLERANCE)
        )

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
