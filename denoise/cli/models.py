"""The model table: ``denoise-models [--json] [--conf DIR] [--size 256] [--repeats 3]``; ``--zoo`` lists the zoo.

For every config in ``conf/model/``: parameters, GMACs per megapixel (``torch.utils.flop_counter``; one
multiply-accumulate = 2 FLOPs) and CPU milliseconds of one 256x256 RGB forward pass (median of a few runs,
after a warm-up).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from torch.utils.flop_counter import FlopCounterMode

from denoise import zoo
from denoise.specs import build
from denoise.tasks.compose import CONF_DIR, model_specs


@torch.no_grad()
def measure(net: torch.nn.Module, size: int, channels: int, repeats: int) -> dict[str, float]:
    net.eval()
    x = torch.rand(1, channels, size, size)
    inputs = (x, 25 / 255) if getattr(net, "takes_noise_level", False) else (x,)  # FFDNet, DRUNet: a level too
    with FlopCounterMode(display=False) as counter:
        net(*inputs)
    macs = counter.get_total_flops() / 2
    net(*inputs)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        net(*inputs)
        times.append(time.perf_counter() - start)
    return {
        "parameters": sum(p.numel() for p in net.parameters()),
        "gmacs_per_megapixel": macs / 1e9 / (size * size / 1e6),
        "cpu_ms": 1000 * statistics.median(times),
    }


def show_zoo(as_json: bool) -> None:
    """The zoo's cards: network, recipe, weights, the scores they reproduce and the papers' numbers."""
    cards = zoo.entries()
    if as_json:
        print(json.dumps(cards, indent=2))
        return
    table = Table(title=f"the model zoo ({zoo.index_path()}): evaluate.py ckpt_path=zoo:<name>")
    for column in ("name", "network", "recipe", "weights", "scores (dB)", "paper (dB)"):
        table.add_column(column)
    for name, card in cards.items():
        weights = card.get("file") or card.get("url") or "not trained yet"
        scores = ", ".join(f"{k} {v}" for k, v in (card.get("scores") or {}).items()) or "-"
        paper = ", ".join(f"{k} {v}" for k, v in (card.get("paper") or {}).items()) or "-"
        table.add_row(name, str(card.get("network", "")), str(card.get("recipe", "")), weights, scores, paper)
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description="Parameters, GMACs/MP and CPU time of every model config")
    parser.add_argument("--conf", type=Path, default=CONF_DIR, help="the config directory (conf/)")
    parser.add_argument("--size", type=int, default=256, help="height and width of the timed RGB input")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--zoo", action="store_true", help="list the model zoo's entries and their scores instead")
    args = parser.parse_args()
    if args.zoo:
        show_zoo(args.json)
        return
    if not (args.conf / "model").is_dir():
        parser.error(f"--conf {args.conf}: no model/ folder there (expected the repository's conf/)")

    rows = []
    specs = model_specs(args.conf)
    with Progress(transient=True, disable=args.json) as progress:
        task = progress.add_task("models", total=len(specs))
        for name, spec in specs.items():
            torch.manual_seed(0)
            net = build(spec, what=f"model={name}", kind="network")
            rows.append(
                {
                    "model": name,
                    "network": spec["_target_"].rsplit(".", 1)[-1],
                    **measure(net, args.size, 3, args.repeats),
                }
            )
            progress.advance(task)

    if args.json:
        print(json.dumps({"size": args.size, "threads": torch.get_num_threads(), "models": rows}, indent=2))
        return
    table = Table(
        title=f"models (RGB; GMACs per megapixel; CPU ms for one {args.size}x{args.size} forward, "
        f"{torch.get_num_threads()} threads)"
    )
    for column in ("model", "network", "parameters", "GMACs/MP", "CPU ms"):
        table.add_column(column, justify="left" if column in {"model", "network"} else "right")
    for row in rows:
        table.add_row(
            row["model"],
            row["network"],
            f"{row['parameters']:,}",
            f"{row['gmacs_per_megapixel']:.1f}",
            f"{row['cpu_ms']:.0f}",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
