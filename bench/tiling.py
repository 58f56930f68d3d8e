"""Batched tiles against the whole image on one device: speed and peak memory, side by side in one process.

For each model (random weights), a ``--megapixels`` RGB photo in host memory (as ``denoise-predict`` holds it)
runs through :func:`denoise.inference.denoise_image` whole and in ``--tile`` tiles, ``--tile-batches`` of them
a forward. Every setting is warmed up once at the very shape it measures (cuDNN picks its kernels then), then
timed ``--repeats`` times with the device synchronized at both ends; the figure is the median and its spread.
Peak memory is the device's ``max_memory_allocated`` over the setting's runs, above what was allocated before
(a CPU has no per-setting peak: memory and the goal are left out there, and the run only checks the path).
Goal (GPU): some tile batch reaches ``>= 0.8x`` the whole-image speed at ``<= 1/10`` of its peak memory.

    python bench/tiling.py [--models nafnet rednet] [--megapixels 12] [--tile 512] [--tile-batches 2 4 8]
                           [--precision bf16] [--repeats 3] [--json bench/results/tiling.json]
"""

from __future__ import annotations

import argparse
import gc
import math
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from denoise.config.specs import build
from denoise.evaluation.report import write_json
from denoise.inference import denoise_image, device_name, synchronize

ROOT = Path(__file__).resolve().parents[1]
SPEED_GOAL, MEMORY_GOAL = 0.8, 0.1


def size_for(megapixels: float) -> tuple[int, int]:
    """A 4:3 landscape ``(height, width)`` of about ``megapixels``."""
    height = round(math.sqrt(megapixels * 1e6 * 3 / 4))
    return height, round(height * 4 / 3)


def measure(net: torch.nn.Module, image: torch.Tensor, device: torch.device, repeats: int, **options: Any) -> dict:
    """Warm-up once at this shape, then ``repeats`` timed runs: median seconds, spread, peak memory."""
    gc.collect()
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    baseline = torch.cuda.memory_allocated(device) if cuda else 0
    seconds = []
    with torch.inference_mode():
        for run in range(repeats + 1):
            synchronize(device)
            start = time.perf_counter()
            out = denoise_image(net, image, **options)
            synchronize(device)
            if run:  # the first run is the warm-up at this shape
                seconds.append(time.perf_counter() - start)
            del out
    megapixels = image.shape[-2] * image.shape[-1] / 1e6
    median = statistics.median(seconds)
    return {
        "seconds": seconds, "seconds_median": median, "mp_per_s": megapixels / median,
        "mp_per_s_spread": [megapixels / max(seconds), megapixels / min(seconds)],
        "peak_mib": (torch.cuda.max_memory_allocated(device) - baseline) / 2**20 if cuda else None,
    }  # fmt: skip


def run_model(name: str, spec: dict, args: argparse.Namespace, device: torch.device) -> dict:
    net = build(spec, what=f"model={name}", kind="network").eval().to(device)
    height, width = size_for(args.megapixels)
    image = torch.rand(1, 3, height, width)  # host memory, as denoise-predict holds a photo
    common = {"precision": args.precision}
    row: dict[str, Any] = {"model": name, "height": height, "width": width}
    row["whole"] = measure(net, image, device, args.repeats, tile=0, **common)
    row["tiled"] = {}
    for batch in args.tile_batches:
        result = measure(net, image, device, args.repeats, tile=args.tile, overlap=args.overlap, tile_batch=batch,
                         **common)  # fmt: skip
        result["speed_ratio"] = result["mp_per_s"] / row["whole"]["mp_per_s"]
        if device.type == "cuda":
            result["memory_ratio"] = result["peak_mib"] / max(row["whole"]["peak_mib"], 1e-9)
            result["goal_met"] = result["speed_ratio"] >= SPEED_GOAL and result["memory_ratio"] <= MEMORY_GOAL
        else:
            result["memory_ratio"] = result["goal_met"] = None
        row["tiled"][str(batch)] = result
    meeting = [b for b, r in row["tiled"].items() if r["goal_met"]]
    row["goal_met"] = bool(meeting) if device.type == "cuda" else None
    row["best_tile_batch"] = max(meeting, key=lambda b: row["tiled"][b]["speed_ratio"]) if meeting else None
    del net
    return row


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["nafnet", "rednet"], help="conf/model names")
    parser.add_argument("--megapixels", type=float, default=12.0)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--tile-batches", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--precision", default="bf16", help="fp32, bf16 or fp16 (the network's evaluation precision)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "tiling.json")
    args = parser.parse_args(argv)
    from denoise.tasks import model_specs

    device = torch.device(args.device)
    specs = model_specs(channels=3, names=args.models)
    rows = [run_model(name, spec, args, device) for name, spec in specs.items()]
    table = Table(title=f"{args.megapixels:g} MP, tiles {args.tile}/{args.overlap}, {args.precision}, "
                        f"{device_name(device)}: tiled against whole")  # fmt: skip
    for column in ("model", "setting", "MP/s (spread)", "peak MiB", "speed x", "memory x", "goal"):
        table.add_column(column, justify="left" if column in ("model", "setting") else "right")
    for row in rows:
        settings = [("whole", row["whole"])] + [(f"tiles x{b}", r) for b, r in row["tiled"].items()]
        for label, result in settings:
            low, high = result["mp_per_s_spread"]
            memory, ratio = result["peak_mib"], result.get("memory_ratio", 1.0)
            goal = {None: "-", True: "met", False: "no"}[result.get("goal_met")]
            table.add_row(
                row["model"], label, f"{result['mp_per_s']:.2f} ({low:.2f}-{high:.2f})",
                "-" if memory is None else f"{memory:,.0f}", f"{result.get('speed_ratio', 1.0):.2f}",
                "-" if ratio is None else f"{ratio:.3f}", goal,
            )  # fmt: skip
    Console().print(table)
    report = {"benchmark": "tiling", "device": device_name(device), "torch": torch.__version__,
              "megapixels": args.megapixels, "tile": args.tile, "overlap": args.overlap,
              "precision": args.precision, "repeats": args.repeats, "goal": {"speed": SPEED_GOAL,
              "memory": MEMORY_GOAL}, "rows": rows}  # fmt: skip
    write_json(args.json, report)
    Console().print(f"wrote {args.json}")
    return report


if __name__ == "__main__":
    main()
