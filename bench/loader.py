"""Training-sample throughput: decoding full photos per sample vs the crop-once patch store.

On a generated SIDD-like set (5328 x 3000 8-bit PNG pairs, the size of SIDD's Galaxy S6 photos), counts
256 x 256 training pairs per second through the training Dataset in one process: (a) ``PairPatches``,
which decodes both full PNGs for every sample, and (b) ``StorePatches``, which crops from the memory-mapped
store (uint8 tensors). Also measures this machine's memcpy bandwidth in the same run (the ceiling for (b))
and the full DataLoader throughput of (b) with 2 workers. Goals: (b) >= 1000 x (a) and >= 2000 pairs/s.

    python bench/loader.py [--pairs 4] [--json bench/results/loader.json]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import track
from rich.table import Table
from torch.utils.data import DataLoader

from denoise.data.cache import PatchStore, StorePatches
from denoise.data.folder_pairs import match_by_name
from denoise.data.io import write_image
from denoise.data.pairs import PairPatches
from denoise.evaluation.report import write_json


def make_pairs(folder: Path, count: int, height: int, width: int) -> list:
    rng = np.random.default_rng(0)
    for i in track(range(count), description="writing 12-MP PNG pairs"):
        low = rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
        clean = np.kron(low, np.ones((16, 16, 1), np.uint8))[:height, :width]
        noisy = np.clip(clean.astype(np.int16) + rng.integers(-20, 21, clean.shape), 0, 255).astype(np.uint8)
        write_image(folder / "clean" / f"{i:03d}.png", clean)
        write_image(folder / "noisy" / f"{i:03d}.png", noisy)
    return match_by_name(folder / "noisy", folder / "clean")


def rate(dataset, seconds: float, minimum: int) -> float:
    """Samples per second through ``dataset[i]`` for at least ``seconds`` and ``minimum`` samples."""
    start, count = time.perf_counter(), 0
    while count < minimum or time.perf_counter() - start < seconds:
        dataset[count]
        count += 1
    return count / (time.perf_counter() - start)


def memcpy_gbps(megabytes: int = 256) -> float:
    source = np.ones(megabytes * 2**20, np.uint8)
    target = np.empty_like(source)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        np.copyto(target, source)
        best = min(best, time.perf_counter() - start)
    return source.nbytes / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--width", type=int, default=5328)
    parser.add_argument("--patch", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--json", type=Path, default=Path("bench/results/loader.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as tmp:
        pairs = make_pairs(Path(tmp) / "pairs", args.pairs, args.height, args.width)
        start = time.perf_counter()
        store = PatchStore.build(pairs, Path(tmp) / "cache", "bench", size=512, stride=384)
        build_seconds = time.perf_counter() - start
        decode = PairPatches(pairs, 3, args.patch, samples_per_epoch=10**9)
        stored = StorePatches([store], [1.0], args.patch, samples_per_epoch=10**9)
        decode_rate = rate(decode, args.seconds, minimum=3)
        store_rate = rate(stored, args.seconds, minimum=1000)
        loader = DataLoader(StorePatches([store], [1.0], args.patch, samples_per_epoch=20000), batch_size=32,
                            num_workers=2, persistent_workers=False)  # fmt: skip
        start, samples = time.perf_counter(), 0
        for batch in loader:
            samples += batch["noisy"].shape[0]
        loader_rate = samples / (time.perf_counter() - start)
        bandwidth = memcpy_gbps()
        pair_bytes = 2 * args.patch * args.patch * 3
        results = {
            "decode_pairs_per_s": decode_rate,
            "store_pairs_per_s": store_rate,
            "speedup": store_rate / decode_rate,
            "dataloader_2_workers_pairs_per_s": loader_rate,
            "memcpy_gb_per_s": bandwidth,
            "memcpy_ceiling_pairs_per_s": bandwidth * 1e9 / pair_bytes,
            "store_build_s": build_seconds,
            "store_sub_images": store.count,
            "store_gb": sum(f.stat().st_size for f in store.folder.iterdir()) / 1e9,
        }

    table = Table(title=f"{args.patch}x{args.patch} training pairs per second, {args.pairs} pairs of "
                        f"{args.width}x{args.height} PNG (one process)")  # fmt: skip
    table.add_column("path")
    table.add_column("pairs/s", justify="right")
    table.add_column("goal", justify="right")
    table.add_row("(a) decode both PNGs per sample", f"{decode_rate:.2f}", "")
    table.add_row("(b) crop from the patch store", f"{store_rate:,.0f}", ">= 2000, >= 1000 x (a)")
    table.add_row("(b) / (a)", f"{results['speedup']:,.0f} x", ">= 1000 x")
    table.add_row("(b) DataLoader, 2 workers, batch 32", f"{loader_rate:,.0f}", "")
    table.add_row(f"memcpy ceiling ({bandwidth:.1f} GB/s)", f"{results['memcpy_ceiling_pairs_per_s']:,.0f}", "")
    Console().print(table)
    Console().print(f"store: {store.count} sub-images of 512x512, {results['store_gb']:.2f} GB, "
                    f"built in {build_seconds:.1f} s")  # fmt: skip
    payload = {"benchmark": "loader", "machine": {"processor": platform.machine(), "torch": torch.__version__},
               "settings": {k: str(v) for k, v in vars(args).items()}, "results": results}  # fmt: skip
    write_json(args.json, payload)
    Console().print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
