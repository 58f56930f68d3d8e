"""How far apart clean and noisy folders are under ``data=noisy_folder``'s clean-folder check.

The check refuses a folder whose median estimated noise sigma (:func:`denoise.data.noise_estimate.flat_region_sigma`,
measured in each image's flattest regions) is below ``data.min_noise_sigma``. This measures the estimate's folder
median, minimum and maximum on clean test sets, on real noisy photos (SIDD's noisy samples, where present), and on
clean images with Gaussian noise of a known sigma, so the threshold's margin on each side is a measured figure.

    python bench/noise_estimate.py [--data-dir DIR] [--json bench/results/noise_estimate.json]

``--data-dir`` holds the test sets (``set12/ bsd68/ cbsd68/ kodak24/ mcmaster/ sidd_samples/``, e.g. what
``paths.data_dir`` points at); sets that are missing are left out.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from denoise.data.io import list_images, read_raw
from denoise.data.noise_estimate import flat_region_sigma
from denoise.evaluation.report import write_json

ROOT = Path(__file__).resolve().parents[1]
CLEAN_SETS = ("set12", "bsd68", "cbsd68", "kodak24", "mcmaster", "sidd_samples/clean")
NOISY_SETS = ("sidd_samples/noisy",)
SYNTHETIC_SIGMAS = (1.0, 2.0, 3.0, 5.0)


def folder_row(name: str, kind: str, levels: list[float], seconds: float) -> dict:
    return {
        "set": name, "kind": kind, "images": len(levels), "median": statistics.median(levels), "min": min(levels),
        "max": max(levels), "seconds_per_image": seconds / len(levels),
    }  # fmt: skip


def measure(data_dir: Path, threshold: float) -> list[dict]:
    rows = []
    for name in CLEAN_SETS + NOISY_SETS:
        folder = data_dir / name
        if not folder.is_dir():
            continue
        start = time.perf_counter()
        levels = [flat_region_sigma(read_raw(path)) for path in list_images(folder)]
        kind = "noisy (real)" if name in NOISY_SETS else "clean"
        rows.append(folder_row(name, kind, levels, time.perf_counter() - start))
    sources = [p for name in ("bsd68", "kodak24") if (data_dir / name).is_dir() for p in list_images(data_dir / name)]
    rng = np.random.default_rng(1)
    for sigma in SYNTHETIC_SIGMAS if sources else ():
        start, levels = time.perf_counter(), []
        for path in sources[:30]:
            image = read_raw(path).astype(np.float64)
            noisy = np.clip(np.round(image + rng.normal(0.0, sigma, image.shape)), 0, 255).astype(np.uint8)
            levels.append(flat_region_sigma(noisy))
        rows.append(folder_row(f"bsd68+kodak24, sigma {sigma:g}", "noisy (synthetic)", levels,
                               time.perf_counter() - start))  # fmt: skip
    for row in rows:
        row["refused"] = row["median"] < threshold
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--threshold", type=float, default=2.5, help="data.min_noise_sigma (conf/data/noisy_folder)")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "noise_estimate.json")
    args = parser.parse_args()
    rows = measure(args.data_dir, args.threshold)
    if not rows:
        raise SystemExit(f"no test sets under {args.data_dir}; give --data-dir")
    table = Table(title=f"estimated noise sigma (0-255), folder medians; refused below {args.threshold:g}")
    for column in ("set", "kind", "images", "median", "min", "max", "refused"):
        table.add_column(column, justify="left" if column in ("set", "kind") else "right")
    for row in rows:
        table.add_row(row["set"], row["kind"], str(row["images"]), f"{row['median']:.2f}", f"{row['min']:.2f}",
                      f"{row['max']:.2f}", "yes" if row["refused"] else "no")  # fmt: skip
    Console().print(table)
    clean = [r["median"] for r in rows if r["kind"] == "clean"]
    noisy = [r["median"] for r in rows if r["kind"] == "noisy (real)"]
    summary = {"threshold": args.threshold, "rows": rows, "largest_clean_median": max(clean, default=None),
               "smallest_real_noisy_median": min(noisy, default=None)}  # fmt: skip
    write_json(args.json, summary)
    print(f"largest clean median {summary['largest_clean_median']}, smallest real noisy median "
          f"{summary['smallest_real_noisy_median']}; wrote {args.json}")  # fmt: skip


if __name__ == "__main__":
    main()
