"""What the hostile-input guards cost, side by side with the same work unguarded, interleaved round by round
(median and spread of ``--runs``): building every network of conf/model through the size budget (a meta-device
build first, modules and parameters counted) against constructing it directly; and the training files' fingerprint
that every checkpoint records, over a folder of photos.

    python bench/guards.py [--runs 5] [--files 400] [--json bench/results/guards.json]
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from denoise.config.specs import arguments, build
from denoise.data.files import files_fingerprint
from denoise.data.io import write_image
from denoise.tasks.compose import model_specs

ROOT = Path(__file__).resolve().parents[1]


def seconds(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def direct(spec: dict) -> Callable[[], object]:
    """The network constructed as before the budget: its class called with the spec's arguments."""
    module, _, name = spec["_target_"].rpartition(".")
    target = getattr(importlib.import_module(module), name)
    return lambda: target(**arguments(spec))


def photos(folder: Path, count: int) -> list[Path]:
    """``count`` 8-bit RGB PNGs of 481x321 (BSD's size), smooth noise (they compress like photos, not like zeros)."""
    rng = np.random.default_rng(0)
    for index in range(count):
        low = rng.random((11, 17, 3)).astype(np.float32)
        image = np.kron(low, np.ones((30, 30, 1), np.float32))[:321, :481] + rng.normal(0, 0.02, (321, 481, 3))
        write_image(folder / f"{index:04d}.png", np.clip(image, 0, 1).astype(np.float32))
    return sorted(folder.iterdir())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=400, help="photos fingerprinted (Train400 has 400)")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "guards.json")
    args = parser.parse_args()
    specs = model_specs()
    timings: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        files = photos(Path(folder), args.files)
        megabytes = sum(f.stat().st_size for f in files) / 1e6
        for _ in range(args.runs):  # interleaved: each round times every case once
            for name, spec in specs.items():
                timings.setdefault(f"{name}: direct", []).append(seconds(direct(spec)))
                timings.setdefault(f"{name}: budgeted", []).append(
                    seconds(lambda spec=spec: build(spec, what="model.net", kind="network"))
                )
            timings.setdefault(f"fingerprint of {args.files} PNGs ({megabytes:.0f} MB)", []).append(
                seconds(lambda: files_fingerprint(files))
            )
    rows = {name: {"median_s": statistics.median(v), "min_s": min(v), "max_s": max(v)} for name, v in timings.items()}
    ratios = {name: rows[f"{name}: budgeted"]["median_s"] / rows[f"{name}: direct"]["median_s"] for name in specs}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"runs": args.runs, "timings": rows, "budgeted_over_direct": ratios}, indent=2))
    table = Table(title=f"the guards' cost, {args.runs} interleaved runs (seconds; ratio: budgeted / direct)")
    for column in ("case", "median", "spread", "ratio"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for name, row in rows.items():
        model = name.split(":")[0]
        ratio = f"{ratios[model]:.2f}" if name.endswith("budgeted") else ""
        table.add_row(name, f"{row['median_s']:.3f}", f"{row['min_s']:.3f}-{row['max_s']:.3f}", ratio)
    Console().print(table)


if __name__ == "__main__":
    main()
