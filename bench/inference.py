"""Full-resolution inference: megapixels per second and peak memory, tiled vs whole image, for every model.

For each config in ``conf/model`` (random weights: speed and memory do not depend on them), on an RGB photo of
``--megapixels`` (default 12, 4000 x 3000):

* **tiled**: ``denoise.inference.denoise_image(tile=512, overlap=32)`` on the full photo, as ``denoise-predict``
  runs it;
* **whole**: the whole image in one forward pass, on the full photo if its activations fit ``--budget-gib``,
  else on the largest 4:3 image that does (estimated from two small whole-image probes, whose peak memory
  grows linearly with the pixel count).

Every measurement runs in a fresh process, so its peak memory is its own: peak RSS on CPU (the whole
process: Python, PyTorch, the weights, the image and the output), ``torch.cuda.max_memory_allocated`` on
CUDA. Goal (issue 5): PRIDNet, tiled, 12 MP, CPU: peak RSS under 2 GiB.

    python bench/inference.py [--models pridnet dncnn] [--megapixels 12] [--device cpu] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from denoise.evaluation.report import write_json

ROOT = Path(__file__).resolve().parents[1]
GOAL_MIB = 2048  # PRIDNet, tiled, 12 MP, CPU


def size_for(megapixels: float) -> tuple[int, int]:
    """A 4:3 landscape ``(height, width)`` of about ``megapixels``."""
    height = round(math.sqrt(megapixels * 1e6 * 3 / 4))
    return height, round(height * 4 / 3)


def worker(job: dict[str, Any]) -> dict[str, Any]:
    """One measurement in this (fresh) process."""
    from denoise.config.specs import build
    from denoise.inference import denoise_image

    torch.set_grad_enabled(False)
    device = torch.device(job["device"])
    net = build(job["spec"], what="model.net").eval().to(device)
    with torch.inference_mode():
        net(torch.rand(1, 3, 64, 64, device=device))  # warm-up: kernels and allocator
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    image = torch.rand(1, 3, job["height"], job["width"])  # the photo stays in host memory, as in predict
    start = time.perf_counter()
    with torch.inference_mode():
        out = denoise_image(net, image, tile=job["tile"], overlap=job["overlap"], tile_batch=job.get("tile_batch", 1),
                            precision=job.get("precision", "fp32"))  # fmt: skip
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    assert out.shape == image.shape
    result = {
        "seconds": seconds,
        "megapixels": job["height"] * job["width"] / 1e6,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "baseline_rss_mib": baseline,
    }
    if device.type == "cuda":
        result["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def measure(
    spec: dict, height: int, width: int, tile: int, overlap: int, device: str, tile_batch: int = 1,
    precision: str = "fp32",
) -> dict[str, Any]:  # fmt: skip
    job = {"spec": spec, "height": height, "width": width, "tile": tile, "overlap": overlap, "device": device,
           "tile_batch": tile_batch, "precision": precision}  # fmt: skip
    cmd = [sys.executable, __file__, "--worker", json.dumps(job)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["killed"])[-1], "megapixels": height * width / 1e6}
    return json.loads(done.stdout.strip().splitlines()[-1])


def peak(result: dict[str, Any]) -> float:
    return result.get("cuda_peak_mib", result.get("peak_rss_mib", math.inf))


def whole_size(spec: dict, megapixels: float, budget_mib: float, device: str) -> tuple[int, int, dict]:
    """The largest 4:3 whole image (up to ``megapixels``) whose peak memory fits the budget: two probes
    (0.25 and 1 MP) give memory per megapixel; aim at 80% of the budget."""
    probes = [measure(spec, *size_for(mp), 0, 0, device) | {"mp": mp} for mp in (0.25, 1.0)]
    if any("error" in p for p in probes):
        return *size_for(0.25), {"probes": probes}
    slope = max((peak(probes[1]) - peak(probes[0])) / 0.75, 1e-6)
    fixed = peak(probes[0]) - 0.25 * slope
    fits = (0.8 * budget_mib - fixed) / slope
    target = max(0.25, min(megapixels, fits))
    return *size_for(target), {"probes": probes, "mib_per_megapixel": slope, "fixed_mib": fixed}


def total_memory_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("cannot read MemTotal from /proc/meminfo")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--models", nargs="*", help="conf/model names (default: all)")
    parser.add_argument("--megapixels", type=float, default=12.0)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--tile-batch", type=int, default=1, help="tiles a forward (denoise-predict --tile-batch)")
    parser.add_argument("--precision", default="fp32", help="fp32, bf16 or fp16 (the evaluation precision)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--budget-gib",
        type=float,
        default=None,
        help="whole-image memory budget (default: the GPU's memory; on CPU, half the RAM)",
    )
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "inference.json")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return

    from denoise.tasks import model_specs

    specs = model_specs(channels=3, names=args.models)
    if args.budget_gib is not None:
        budget = args.budget_gib * 1024
    elif args.device.startswith("cuda"):
        budget = torch.cuda.get_device_properties(0).total_memory / 2**20
    else:
        budget = 0.5 * total_memory_mib()
    height, width = size_for(args.megapixels)
    rows = []
    with Progress() as progress:
        task = progress.add_task("models", total=len(specs))
        for name, spec in specs.items():
            progress.update(task, description=f"{name}: tiled {height}x{width}")
            tiled = measure(spec, height, width, args.tile, args.overlap, args.device, args.tile_batch, args.precision)
            progress.update(task, description=f"{name}: sizing the whole image")
            whole_h, whole_w, sizing = whole_size(spec, args.megapixels, budget, args.device)
            progress.update(task, description=f"{name}: whole {whole_h}x{whole_w}")
            whole = measure(spec, whole_h, whole_w, 0, 0, args.device, precision=args.precision)
            rows.append({"model": name, "tiled": tiled, "whole": whole, "whole_sizing": sizing})
            progress.advance(task)

    def rate(result: dict) -> float | None:
        return result["megapixels"] / result["seconds"] if "seconds" in result else None

    goals = {}
    for row in rows:
        row["tiled_mp_per_s"], row["whole_mp_per_s"] = rate(row["tiled"]), rate(row["whole"])
        if row["tiled_mp_per_s"] and row["whole_mp_per_s"]:
            row["tiled_over_whole_speed"] = row["tiled_mp_per_s"] / row["whole_mp_per_s"]
        if row["model"] == "pridnet" and args.device == "cpu" and args.megapixels >= 12:
            goals["pridnet_12mp_tiled_cpu_peak_rss_under_2gib"] = peak(row["tiled"]) < GOAL_MIB

    memory = "peak GPU MiB" if args.device.startswith("cuda") else "peak RSS MiB"
    table = Table(
        title=f"inference, {args.megapixels:g} MP RGB, tile {args.tile} overlap {args.overlap} x{args.tile_batch} a "
        f"forward, {args.precision}, {args.device}"
    )
    for column in (
        "model",
        "tiled MP/s",
        f"tiled {memory}",
        "whole MP",
        "whole MP/s",
        f"whole {memory}",
        "tiled/whole speed",
    ):
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in rows:
        tiled, whole = row["tiled"], row["whole"]
        table.add_row(
            row["model"],
            f"{row['tiled_mp_per_s']:.3f}" if row["tiled_mp_per_s"] else tiled.get("error", "-"),
            f"{peak(tiled):,.0f}" if "error" not in tiled else "-",
            f"{whole['megapixels']:.2f}",
            f"{row['whole_mp_per_s']:.3f}" if row["whole_mp_per_s"] else whole.get("error", "-"),
            f"{peak(whole):,.0f}" if "error" not in whole else "-",
            f"{row.get('tiled_over_whole_speed', math.nan):.2f}",
        )
    Console().print(table)
    for goal, met in goals.items():
        Console().print(f"goal {goal}: {'[green]met' if met else '[red]NOT met'}")
    report = {
        "benchmark": "inference",
        "device": args.device,
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "megapixels": args.megapixels,
        "tile": args.tile,
        "overlap": args.overlap,
        "whole_budget_mib": budget,
        "rows": rows,
        "goals": goals,
    }
    write_json(args.json, report)
    Console().print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
