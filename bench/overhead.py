"""Lightning's per-step overhead: DenoiseModule under ``Trainer.fit`` vs a plain PyTorch loop.

Both train the same REDNet from the same initial weights on the same pre-built batches (Adam, per-iteration
cosine schedule, the module's loss). Each step is timed start to start, so Lightning's data fetch, hooks and
logging are inside its step time. Runs alternate (plain, fit, fit, plain, ...) so machine noise hits both
alike, and the ratio compares the median step times, which bursts of noise on a shared VM barely move.
Goal: ratio <= 1.03.

    python bench/overhead.py [--steps 40] [--rounds 6] [--json bench/results/overhead.json]
"""

from __future__ import annotations

import argparse
import copy
import itertools
import logging
import platform
import statistics
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from torch.utils.data import DataLoader

from denoise.module import DenoiseModule
from denoise.optim import cosine_with_warmup
from denoise.report import write_json

CONFIGS = {
    "RED10-32 (quickstart)": {"depth": 10, "channels": 32},
    "RED10-64": {"depth": 10, "channels": 64},
}
LR = 1e-3


class StepTimer(L.Callback):
    """Start-to-start time of every training step (the last one ends at its batch end)."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.end = 0.0

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.starts.append(time.perf_counter())

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.end = time.perf_counter()

    def step_times(self) -> list[float]:
        marks = [*self.starts, self.end]
        return [b - a for a, b in itertools.pairwise(marks)]


def make_batches(steps: int, batch: int, patch: int) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    out = []
    for _ in range(steps):
        clean = torch.rand(batch, 3, patch, patch, generator=generator)
        out.append({"noisy": clean + 25 / 255 * torch.randn(clean.shape, generator=generator), "clean": clean})
    return out


def plain_loop(module: DenoiseModule, batches: list[dict[str, torch.Tensor]]) -> list[float]:
    """The hand-written equivalent of the module's training: forward, loss, backward, step, schedule."""
    net, loss_fn = module.net, module.loss_fn
    optimizer = torch.optim.Adam(net.parameters(), lr=LR)
    scheduler = cosine_with_warmup(optimizer, total_steps=len(batches))
    net.train()
    marks = []
    for batch in batches:
        marks.append(time.perf_counter())
        loss = loss_fn(net(batch["noisy"]), batch["clean"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    marks.append(time.perf_counter())
    return [b - a for a, b in itertools.pairwise(marks)]


def lightning_fit(module: DenoiseModule, batches: list[dict[str, torch.Tensor]]) -> list[float]:
    timer = StepTimer()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=len(batches),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=[timer],
    )
    trainer.fit(module, train_dataloaders=DataLoader(batches, batch_size=None, shuffle=False))
    return timer.step_times()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5, help="steps of each run left out of the timing")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=48)
    parser.add_argument("--json", type=Path, default=Path("bench/results/overhead.json"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    batches = make_batches(args.steps, args.batch, args.patch)
    results = []
    with Progress() as progress:
        task = progress.add_task("runs", total=len(CONFIGS) * args.rounds)
        for name, net_args in CONFIGS.items():
            torch.manual_seed(0)
            reference = DenoiseModule(
                net={"_target_": "denoise.models.rednet.REDNet", "in_channels": 3, **net_args},
                optimizer={"_target_": "torch.optim.Adam", "lr": LR},
                scheduler={"_target_": "denoise.optim.cosine_with_warmup", "warmup_steps": 0},
            )
            plain: list[float] = []
            fit: list[float] = []
            for round_index in range(args.rounds):
                order = [(plain, plain_loop), (fit, lightning_fit)]
                for times, run in order if round_index % 2 == 0 else order[::-1]:
                    times.extend(run(copy.deepcopy(reference), batches)[args.warmup :])
                progress.advance(task)
            plain_ms, fit_ms = 1000 * statistics.median(plain), 1000 * statistics.median(fit)
            results.append(
                {
                    "model": name,
                    "steps_timed_each": len(plain),
                    "plain_ms_median": plain_ms,
                    "lightning_ms_median": fit_ms,
                    "ratio": fit_ms / plain_ms,
                    "plain_ms_mean": 1000 * statistics.fmean(plain),
                    "lightning_ms_mean": 1000 * statistics.fmean(fit),
                    "overhead_ms": fit_ms - plain_ms,
                }
            )

    table = Table(title=f"Lightning fit vs plain loop, batch {args.batch} x {args.patch}², median step time")
    for column in ("model", "plain ms", "Lightning ms", "overhead ms", "ratio", "goal"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in results:
        table.add_row(
            row["model"],
            f"{row['plain_ms_median']:.1f}",
            f"{row['lightning_ms_median']:.1f}",
            f"{row['overhead_ms']:+.1f}",
            f"{row['ratio']:.3f}",
            "<= 1.03",
        )
    Console().print(table)
    payload = {
        "benchmark": "overhead",
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "lightning": L.__version__,
        },
        "settings": {k: str(v) for k, v in vars(args).items()},
        "results": results,
    }
    write_json(args.json, payload)
    Console().print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
