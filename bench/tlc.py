"""TLC's effect: a network with global pooling, trained on crops, run on whole test images and in tiles, with and
without the test-time local converter.

Trains NAFNet-small (its simplified channel attention pools globally) for ``--steps`` steps on 48x48 crops of the
embedded photos at sigma 25 (a fresh ``python train.py``), then denoises the test images (astronaut, chelsea,
512x512) four ways: whole, whole with TLC, in ``--tile`` tiles, in tiles with TLC. Reports each way's PSNR and
how far the tiled output is from the whole one (PSNR between them: higher is closer).

    python bench/tlc.py [--steps 1000] [--tile 128] [--json bench/results/tlc.json]
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from denoise.checkpoint import load_network
from denoise.data.noise import GaussianNoise
from denoise.data.synthetic import NoisyImages, embedded_files, load_images
from denoise.evaluation.metrics import image_metrics
from denoise.evaluation.report import write_json
from denoise.inference import apply_tlc, denoise_image

ROOT = Path(__file__).resolve().parents[1]


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / ((a.double() - b.double()) ** 2).mean()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--tile", type=int, default=128)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "tlc.json")
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        overrides = ["model=nafnet_small", f"data.samples_per_epoch={args.steps * 8 // 10}", "logger=none"]
        console.print(f"training NAFNet-small for {args.steps} steps ...")
        subprocess.run([sys.executable, str(ROOT / "train.py"), *overrides, f"hydra.run.dir={run}"], cwd=ROOT,
                       env={**os.environ, "WANDB_MODE": "disabled"}, check=True, capture_output=True)  # fmt: skip
        net, _ = load_network(run / "checkpoints" / "last.ckpt", None)
    net.eval()
    local = copy.deepcopy(net)
    changed = apply_tlc(local, 48, 3)
    files = embedded_files("test")
    images = NoisyImages(load_images(files, 3), [f.name for f in files], GaussianNoise(25.0), seed=12345)
    rows, outputs = [], {}
    with torch.no_grad():
        for way, network, tile in (("whole", net, 0), ("whole + TLC", local, 0), (f"tiles {args.tile}", net, args.tile),
                                   (f"tiles {args.tile} + TLC", local, args.tile)):  # fmt: skip
            scores = []
            for index in range(len(images)):
                sample = images[index]
                out = denoise_image(network, sample["noisy"][None], tile=tile, overlap=32).clamp(0, 1)
                outputs[(way, index)] = out
                scores.append(float(image_metrics(out, sample["noisy"][None], sample["clean"][None])["psnr"][0]))
            rows.append({"way": way, "psnr": sum(scores) / len(scores)})
    for row in rows:
        whole = "whole + TLC" if "TLC" in row["way"] else "whole"
        row["vs whole (PSNR dB)"] = sum(psnr(outputs[(row["way"], i)], outputs[(whole, i)]) if row["way"] != whole
                                        else float("inf") for i in range(len(images))) / len(images)  # fmt: skip
    table = Table(title=f"NAFNet-small after {args.steps} steps on 48x48 crops; {changed} pools made local by TLC")
    for column in ("way", "test PSNR dB", "agreement with the whole-image output (PSNR dB)"):
        table.add_column(column, justify="left" if column == "way" else "right")
    for row in rows:
        agreement = row["vs whole (PSNR dB)"]
        table.add_row(row["way"], f"{row['psnr']:.3f}", "-" if agreement == float("inf") else f"{agreement:.1f}")
    console.print(table)
    write_json(args.json, {"benchmark": "tlc", "steps": args.steps, "tile": args.tile, "rows": rows})
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
