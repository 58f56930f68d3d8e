"""Training step time, fp32 against bf16 autocast (and channels_last), for PRIDNet and MWCNN.

One training step = forward, loss, backward and an Adam step, on a batch of ``--batch`` (default 16) random
``--size`` x ``--size`` (default 256) RGB crops, timed after warm-up steps with the device synchronized. The
variants run side by side in one process, interleaved round by round, so the ratio is fair on a noisy machine:

* ``fp32``: full precision (TF32 off);
* ``bf16``: ``torch.autocast(dtype=torch.bfloat16)``, what ``trainer.precision=bf16-mixed`` does;
* ``bf16+cl``: bf16 with the network and batch in channels_last (``trainer.channels_last=true``).

Goal (issue 6, on a GPU): bf16 at least 1.8x faster than fp32 for both networks. The JSON records the device's
name. On CPU the script runs too (``--device cpu --batch 2 --size 64`` as a smoke test), but CPU figures say
nothing about tensor cores.

    python bench/mixed_precision.py [--models pridnet mwcnn] [--batch 16] [--size 256] [--device cuda]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from denoise.evaluation.report import write_json
from denoise.inference import device_name

ROOT = Path(__file__).resolve().parents[1]
GOAL = 1.8
VARIANTS = ("fp32", "bf16", "bf16+cl")


class Stepper:
    """One network, optimizer and batch per variant; ``step()`` runs one timed training step."""

    def __init__(self, spec: dict[str, Any], variant: str, batch: int, size: int, device: torch.device) -> None:
        from denoise.config.specs import build

        torch.manual_seed(0)
        self.device, self.variant = device, variant
        memory_format = torch.channels_last if variant.endswith("+cl") else torch.contiguous_format
        self.net = build(spec, what="model.net").to(device).to(memory_format=memory_format).train()
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=1e-4)
        self.noisy = torch.rand(batch, 3, size, size, device=device).contiguous(memory_format=memory_format)
        self.clean = torch.rand(batch, 3, size, size, device=device).contiguous(memory_format=memory_format)

    def step(self) -> float:
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.variant != "fp32")
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        start = time.perf_counter()
        with autocast:
            loss = torch.nn.functional.l1_loss(self.net(self.noisy), self.clean)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - start


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from denoise.tasks import model_specs

    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    specs = model_specs(channels=3, names=args.models)
    results: dict[str, Any] = {}
    with Progress() as progress:
        task = progress.add_task("training steps", total=len(specs) * len(VARIANTS) * (args.warmup + args.steps))
        for name, spec in specs.items():
            steppers = {v: Stepper(spec, v, args.batch, args.size, device) for v in VARIANTS}
            times: dict[str, list[float]] = {v: [] for v in VARIANTS}
            for round_ in range(args.warmup + args.steps):
                for variant, stepper in steppers.items():  # interleaved: every variant sees the same conditions
                    elapsed = stepper.step()
                    if round_ >= args.warmup:
                        times[variant].append(elapsed)
                    progress.advance(task)
            median = {v: sorted(t)[len(t) // 2] for v, t in times.items()}
            results[name] = {
                "step_ms": {v: 1000 * median[v] for v in VARIANTS},
                "speedup_bf16": median["fp32"] / median["bf16"],
                "speedup_bf16_channels_last": median["fp32"] / median["bf16+cl"],
                "images_per_s_bf16": args.batch / median["bf16"],
            }
            del steppers
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["pridnet", "mwcnn"])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "mixed_precision.json")
    args = parser.parse_args()

    device = torch.device(args.device)
    results = measure(args)
    report = {
        "device": device_name(device),
        "torch": torch.__version__,
        "batch": args.batch,
        "size": args.size,
        "steps": args.steps,
        "goal_speedup_bf16": GOAL,
        "models": results,
    }
    write_json(args.json, report)

    table = Table(title=f"training step, batch {args.batch} x {args.size}^2, {report['device']}")
    for column in ("model", "fp32 ms", "bf16 ms", "bf16+cl ms", "bf16 speed-up", "bf16+cl speed-up", "goal"):
        table.add_column(column, justify="right" if column != "model" else "left")
    for name, row in results.items():
        ms = row["step_ms"]
        best = max(row["speedup_bf16"], row["speedup_bf16_channels_last"])
        table.add_row(
            name, f"{ms['fp32']:.1f}", f"{ms['bf16']:.1f}", f"{ms['bf16+cl']:.1f}", f"{row['speedup_bf16']:.2f}x",
            f"{row['speedup_bf16_channels_last']:.2f}x", "met" if best >= GOAL else f"< {GOAL}x",
        )  # fmt: skip
    Console().print(table)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
