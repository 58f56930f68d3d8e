"""The model table: ``denoise-models [--time] [--json] [--conf DIR] [--size 256] [--repeats 3]``; ``--zoo`` lists
the zoo.

For every config in ``conf/model/``: parameters and GMACs per megapixel (``torch.utils.flop_counter``, one
multiply-accumulate = 2 FLOPs, counted on the meta device: no memory, no arithmetic, seconds for all of them);
``--time`` adds CPU milliseconds of one 256x256 RGB forward pass (median of a few runs, after a warm-up), which
takes minutes for the large networks.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from denoise.cli import add_version
from denoise.config.paths import CONF_DIR


def count(spec: dict[str, Any], name: str, size: int, channels: int) -> dict[str, float]:
    """Parameters and GMACs per megapixel, on the meta device (shapes only: seconds for every network)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from denoise.config.specs import build

    with torch.device("meta"), torch.no_grad():
        net = build(spec, what=f"model={name}", kind="network").eval()
        x = torch.empty(1, channels, size, size)
        inputs = (x, torch.full((1,), 25 / 255)) if getattr(net, "takes_noise_level", False) else (x,)
        with FlopCounterMode(display=False) as counter:
            net(*inputs)
    return {"parameters": sum(p.numel() for p in net.parameters()),
            "gmacs_per_megapixel": counter.get_total_flops() / 2 / 1e9 / (size * size / 1e6)}  # fmt: skip


def cpu_ms(spec: dict[str, Any], name: str, size: int, channels: int, repeats: int) -> float:
    """The median CPU time of one forward pass, after a warm-up (--time)."""
    import torch

    from denoise.config.specs import build

    torch.manual_seed(0)
    net = build(spec, what=f"model={name}", kind="network").eval()
    x = torch.rand(1, channels, size, size)
    inputs = (x, 25 / 255) if getattr(net, "takes_noise_level", False) else (x,)  # FFDNet, DRUNet: a level too
    times = []
    with torch.no_grad():
        net(*inputs)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            net(*inputs)
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def _pairs(value: Any) -> str:
    """A card's scores or paper numbers as ``key value, ...`` (a malformed field as it is written)."""
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "-"
    return "-" if value in (None, "") else str(value)


def show_zoo(as_json: bool) -> int:
    """The zoo's cards: network, recipe, weights, the scores they reproduce and the papers' numbers; a zoo index
    that cannot be read is one line naming it (exit status 2)."""
    import sys

    from denoise import zoo

    try:
        cards = zoo.entries()
    except zoo.ZooError as err:
        print(f"denoise-models: error: {err}", file=sys.stderr)
        return 2
    if as_json:
        print(json.dumps(cards, indent=2, default=str))
        return 0
    from denoise.data.console import show_table

    rows = []
    for name, card in cards.items():
        weights = card.get("file") or card.get("url") or "not trained yet"
        network, recipe = str(card.get("network", "")), str(card.get("recipe", ""))
        rows.append([name, network, recipe, str(weights), _pairs(card.get("scores")), _pairs(card.get("paper"))])
    columns = ("name", "network", "recipe", "weights", "scores (dB)", "paper (dB)")
    show_table(f"the model zoo ({zoo.index_path()}): evaluate.py ckpt_path=zoo:<name>", columns, rows)
    return 0


DESCRIPTION = (
    "The networks of conf/model/: parameters and GMACs per megapixel of each (--time adds CPU milliseconds of one "
    "forward pass); --zoo lists the model zoo's cards instead."
)


def main() -> None:
    parser = argparse.ArgumentParser(prog="denoise-models", description=DESCRIPTION)
    add_version(parser)
    parser.add_argument("--conf", type=Path, default=CONF_DIR, help="the config directory (conf/)")
    parser.add_argument("--size", type=int, default=256, help="height and width of the counted (and timed) input")
    parser.add_argument("--time", action="store_true", help="also time one CPU forward pass of each (minutes)")
    parser.add_argument("--repeats", type=int, default=3, help="with --time: timed runs per model (the median)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--zoo", action="store_true", help="list the model zoo's entries and their scores instead")
    args = parser.parse_args()
    if args.zoo:
        raise SystemExit(show_zoo(args.json))
    if not (args.conf / "model").is_dir():
        parser.error(f"--conf {args.conf}: no model/ folder there (expected the repository's conf/)")
    import torch

    from denoise.data.console import Steps, show_table
    from denoise.tasks.compose import model_specs

    rows = []
    specs = model_specs(args.conf)
    with Steps("denoise-models", len(specs), "models", enabled=not args.json) as progress:
        for name, spec in specs.items():
            row = {"model": name, "network": spec["_target_"].rsplit(".", 1)[-1], **count(spec, name, args.size, 3)}
            if args.time:
                row["cpu_ms"] = cpu_ms(spec, name, args.size, 3, args.repeats)
            rows.append(row)
            progress.advance(1, name)

    if args.json:
        print(json.dumps({"size": args.size, "threads": torch.get_num_threads(), "models": rows}, indent=2))
        return
    timed = f"; CPU ms for one {args.size}x{args.size} forward, {torch.get_num_threads()} threads" if args.time else ""
    columns = ("model", "network", "parameters", "GMACs/MP", *(("CPU ms",) if args.time else ()))
    cells = [
        [row["model"], row["network"], f"{row['parameters']:,}", f"{row['gmacs_per_megapixel']:.1f}"]
        + ([f"{row['cpu_ms']:.0f}"] if args.time else [])
        for row in rows
    ]
    show_table(f"models (RGB; GMACs per megapixel{timed})", columns, cells, right=columns[2:])


if __name__ == "__main__":
    main()
