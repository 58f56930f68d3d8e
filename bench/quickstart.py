"""The README's main job, timed as a new user meets it: ``python train.py`` (W&B offline) start to printed table.

Each run is a fresh process in its own run directory; the figures are wall seconds and the test gain, as the
median of ``--runs`` runs with their spread. Goal (issue 12): at most 3 minutes with at least +8 dB on the 2-core
machine this project is developed on.

    python bench/quickstart.py [--runs 3] [--json bench/results/quickstart.json] [-- extra overrides]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from denoise.evaluation.report import write_json
from denoise.inference import device_name

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "quickstart.json")
    parser.add_argument("overrides", nargs="*", help="extra train.py overrides (after --)")
    args = parser.parse_args()
    env = {**os.environ, "WANDB_MODE": os.environ.get("WANDB_MODE", "offline")}
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(args.runs):
            run_dir = Path(tmp) / f"run{index}"
            command = [sys.executable, str(ROOT / "train.py"), *args.overrides, f"hydra.run.dir={run_dir}"]
            start = time.perf_counter()
            done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
            seconds = time.perf_counter() - start
            if done.returncode != 0:
                raise SystemExit(f"run {index} failed:\n{done.stderr[-3000:]}")
            results = json.loads((run_dir / "results.json").read_text())
            runs.append(
                {
                    "seconds": seconds,
                    "fit_seconds": results.get("fit_seconds"),
                    "global_step": results["global_step"],
                    "psnr": results["test/psnr"],
                    "psnr_noisy": results["test/psnr_noisy"],
                    "gain": results["test/psnr"] - results["test/psnr_noisy"],
                    "ssim": results["test/ssim"],
                    "ssim_noisy": results["test/ssim_noisy"],
                }
            )
            Console().print(f"run {index}: {seconds:.1f} s, {runs[-1]['gain']:+.2f} dB")
    seconds = [r["seconds"] for r in runs]
    gains = [r["gain"] for r in runs]
    summary = {
        "median_seconds": statistics.median(seconds),
        "min_seconds": min(seconds),
        "max_seconds": max(seconds),
        "median_gain_db": statistics.median(gains),
        "min_gain_db": min(gains),
    }
    table = Table(title=f"python train.py {' '.join(args.overrides)} on {device_name(torch.device('cpu'))}")
    for column in ("runs", "wall s (median)", "min-max", "test gain dB (median)", "min", "goal"):
        table.add_column(column, justify="right")
    table.add_row(
        str(len(runs)),
        f"{summary['median_seconds']:.1f}",
        f"{summary['min_seconds']:.1f}-{summary['max_seconds']:.1f}",
        f"{summary['median_gain_db']:+.2f}",
        f"{summary['min_gain_db']:+.2f}",
        "<= 180 s, >= +8 dB",
    )
    Console().print(table)
    write_json(args.json, {"benchmark": "quickstart", "overrides": args.overrides, "runs": runs, **summary})
    Console().print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
