"""What train.py costs over a plain PyTorch loop: the real training path against a hand-written loop.

*Lightning* is train.py's own path: the config composed from ``conf/train.yaml`` (default callbacks, the CSV
logger), the datamodule, ``DenoiseModule`` and ``Trainer.fit``. *Plain* is the loop a user would write: the
same network (same spec and initial weights), optimizer, schedule, loss, precision (autocast) and data (the
same datamodule's batches), with no framework around it. Throughput is steps per second between the
``--warmup``-th and the last step, timed with the device synchronized at both ends; runs alternate (plain,
Lightning, Lightning, plain, ...) and the ratio compares the medians. Goal: ``plain / Lightning`` speed at most
1.05 on a GPU and 1.03 on a CPU.

Settings per device (the issue's): on a GPU, DnCNN (batch 128 of 40x40 gray) and NAFNet-small (batch 16 of
128x128 RGB) in bf16, with the batches drawn on the device (``data.on_device=true``); on a CPU, smaller batches
(DnCNN 16 of 40x40, NAFNet-small 4 of 64x64) in fp32 through the default loader. ``--sync-audit`` (CUDA only)
counts host-device synchronisations per training step with ``torch.cuda.set_sync_debug_mode``.

    python bench/overhead.py [--device cuda|cpu] [--models dncnn nafnet_small] [--steps 200] [--rounds 3]
                             [--compile] [--sync-audit] [--json bench/results/overhead_<device>.json]
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import statistics
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from rich.console import Console
from rich.table import Table

from denoise.inference import device_name, synchronize
from denoise.tasks import compose_config

ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """Where Train400 is looked for: ``DATA_DIR``, else the project's data/ (paths.data_dir), else
    ../shared/data beside the checkout; the embedded photos are used where none has it."""
    import os

    for candidate in (os.environ.get("DATA_DIR"), ROOT / "data", ROOT.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "train400").is_dir():
            return Path(candidate)
    return ROOT / "data"


GOAL = {"cuda": 1.05, "cpu": 1.03}
#: model -> device type -> (batch, patch, gray, precision)
SETTINGS: dict[str, dict[str, tuple[int, int, bool, str]]] = {
    "dncnn": {"cuda": (128, 40, True, "bf16-mixed"), "cpu": (16, 40, True, "32-true")},
    "nafnet_small": {"cuda": (16, 128, False, "bf16-mixed"), "cpu": (4, 64, False, "32-true")},
    # a 3-layer, 4-channel DnCNN on 16x16 crops: the step's arithmetic is negligible, so the step time is the
    # host's own per-step work (Python, launches): what a fast GPU cannot hide when the host falls behind
    "host": {"cuda": (2, 16, True, "bf16-mixed"), "cpu": (2, 16, True, "32-true")},
}
#: configs and extra overrides of the models that are not plain conf/model names
MODEL_CONFIG = {"host": ("dncnn", ["model.net.depth=3", "model.net.channels=4"])}


class Throughput(L.Callback):
    """Steps per second of a Trainer.fit from step ``warmup`` to the end of the last step (device synchronized at
    both; the epoch's validation comes after)."""

    def __init__(self, warmup: int, device: torch.device, audit: bool = False) -> None:
        self.warmup, self.device, self.audit = warmup, device, audit
        self.start = self.end = 0.0
        self.steps = 0

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup:
            synchronize(self.device)
            self.start = time.perf_counter()
            if self.audit:
                torch.cuda.set_sync_debug_mode("warn")

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if batch_idx == trainer.num_training_batches - 1:  # the last step: before the epoch's validation
            if self.audit:
                torch.cuda.set_sync_debug_mode(0)
            synchronize(self.device)
            self.end = time.perf_counter()
            self.steps = trainer.global_step - self.warmup

    def rate(self) -> float:
        return self.steps / (self.end - self.start)


def compose(model: str, device: torch.device, steps: int, out_dir: Path, compile_net: bool) -> Any:
    """train.py's config for this benchmark (one epoch of ``steps`` steps, CSV logger, default callbacks)."""
    batch, patch, gray, precision = SETTINGS[model][device.type]
    config, extra = MODEL_CONFIG.get(model, (model, []))
    overrides = [
        f"model={config}",
        *extra,
        "logger=csv",
        f"trainer={'gpu' if device.type == 'cuda' else 'default'}",
        f"trainer.accelerator={'gpu' if device.type == 'cuda' else 'cpu'}",
        f"trainer.precision={precision}",
        "trainer.max_epochs=1",
        "+trainer.limit_val_batches=0",  # no validation: its whole-image shapes would recompile a compiled net
        "trainer.num_sanity_val_steps=0",
        f"data.grayscale={gray}",
        f"data.patch_size={patch}",
        f"data.batch_size={batch}",
        f"data.samples_per_epoch={steps * batch}",
        f"data.on_device={device.type == 'cuda'}",
        f"model.compile={compile_net}",
        "test=false",
        "overwrite=true",  # the rounds run one after another in the same run directory
    ]
    train400 = data_dir() / "train400"
    if train400.is_dir() and model != "host":
        overrides.append(f"data.train_dirs=[{train400}]")
    return compose_config("train", overrides, out_dir)


def lightning_run(cfg: Any, device: torch.device, warmup: int, audit: bool) -> tuple[float, list[str]]:
    """train.py's path (denoise.tasks.train) with a throughput probe among the callbacks."""
    from omegaconf import OmegaConf, open_dict

    from denoise import tasks
    from denoise.tasks import training

    probe = Throughput(warmup, device, audit)
    real_build = training.build_trainer

    def build_with_probe(trainer_cfg, callbacks, loggers):
        return real_build(trainer_cfg, [*callbacks, probe], loggers)

    training.build_trainer = build_with_probe
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = tempfile.mkdtemp(prefix="overhead-")
    syncs: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            original = warnings.showwarning

            def record(message, category, filename, lineno, file=None, line=None):
                if "synchroniz" in str(message):
                    syncs.append("".join(traceback.format_stack(limit=12)[:-1]))
                else:
                    original(message, category, filename, lineno, file, line)

            warnings.showwarning = record
            tasks.train(OmegaConf.create(OmegaConf.to_container(cfg)))
    finally:
        training.build_trainer = real_build
    return probe.rate(), syncs


def plain_run(cfg: Any, device: torch.device, warmup: int) -> float:
    """The same network, optimizer, schedule, loss, precision and batches, in a hand-written loop."""
    from denoise.config.specs import build
    from denoise.data.datamodule import DenoiseDataModule
    from denoise.tasks import instantiate
    from denoise.training.optim import resolve_fused

    L.seed_everything(cfg.seed, verbose=False)
    datamodule: DenoiseDataModule = instantiate(cfg.data)
    datamodule.setup("fit")
    net = build(dict(cfg.model.net), what="model.net").to(device).train()
    if cfg.model.get("compile"):
        net.compile()
    spec = resolve_fused(dict(cfg.model.optimizer), device.type)  # as DenoiseModule.configure_optimizers
    optimizer = build({**spec, "_partial_": True}, what="model.optimizer")(net.parameters())
    loader = datamodule.train_dataloader()
    scheduler = build({**cfg.model.scheduler, "_partial_": True}, what="model.scheduler")(
        optimizer, total_steps=len(loader)
    )
    loss_fn = build(dict(cfg.model.loss), what="model.loss", kind="loss")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.trainer.precision == "bf16-mixed")
    start, steps = 0.0, 0
    for step, batch in enumerate(loader):
        if step == warmup:
            synchronize(device)
            start = time.perf_counter()
        if "draw" in batch:
            batch = datamodule.draw_batch(device)
        else:
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items() if torch.is_tensor(v)}
        with autocast:
            pred = net(batch["noisy"])
        loss = loss_fn(pred.float(), batch["clean"].float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        steps = step + 1 - warmup
    synchronize(device)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--steps", type=int, default=None, help="steps per run (default: 300 on a GPU, 40 on a CPU)")
    parser.add_argument("--warmup", type=int, default=None, help="steps left out of the timing (default: steps/5)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each side, alternating")
    parser.add_argument("--compile", action="store_true", help="model.compile=true on both sides")
    parser.add_argument(
        "--compile-models", nargs="*", default=[], choices=list(SETTINGS),
        help="also these models with model.compile=true, in the same process (after the others)",
    )  # fmt: skip
    parser.add_argument("--sync-audit", action="store_true", help="count host syncs per step (CUDA only)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    device = torch.device(args.device)
    steps = args.steps or (300 if device.type == "cuda" else 40)
    warmup = args.warmup if args.warmup is not None else max(steps // 5, 3)
    json_path = (
        args.json or ROOT / "bench" / "results" / f"overhead_{device.type}{'_compile' if args.compile else ''}.json"
    )
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    logging.getLogger("denoise").setLevel(logging.WARNING)
    os.environ.setdefault("WANDB_MODE", "disabled")

    results = []
    console = Console()  # one line per run: Lightning's own rich progress bar is part of what is timed
    with tempfile.TemporaryDirectory() as tmp:
        runs = [(model, args.compile) for model in args.models] + [(model, True) for model in args.compile_models]
        for model, compiled in runs:
            cfg = compose(model, device, steps, Path(tmp) / f"{model}{'-compiled' * compiled}", compiled)
            plain: list[float] = []
            fit: list[float] = []
            for round_index in range(args.rounds):
                order = ["plain", "lightning"] if round_index % 2 == 0 else ["lightning", "plain"]
                for side in order:
                    if side == "plain":
                        plain.append(plain_run(cfg, device, warmup))
                    else:
                        fit.append(lightning_run(cfg, device, warmup, audit=False)[0])
                    rate = (plain if side == "plain" else fit)[-1]
                    label = f"{model}{' (compiled)' * compiled}"
                    console.print(f"{label} round {round_index + 1}/{args.rounds}, {side}: {rate:.2f} steps/s")
            batch, patch, gray, precision = SETTINGS[model][device.type]
            row: dict[str, Any] = {
                "model": model,
                "batch": batch,
                "patch": patch,
                "channels": 1 if gray else 3,
                "precision": precision,
                "data": "on the device" if device.type == "cuda" else "DataLoader",
                "compile": compiled,
                "steps_timed": steps - warmup,
                "plain_steps_per_s": plain,
                "lightning_steps_per_s": fit,
                "plain_median": statistics.median(plain),
                "lightning_median": statistics.median(fit),
            }
            row["ratio"] = row["plain_median"] / row["lightning_median"]
            # what Lightning adds to each step on the host, in milliseconds (the model "host" isolates it)
            row["extra_ms_per_step"] = 1e3 * (1 / row["lightning_median"] - 1 / row["plain_median"])
            if args.sync_audit and device.type == "cuda" and model != "host":
                _, syncs = lightning_run(cfg, device, warmup, audit=True)
                row["syncs_per_step"] = len(syncs) / (steps - warmup)
                row["sync_stacks"] = syncs[:5]
            results.append(row)

    goal = GOAL.get(device.type, 1.05)
    table = Table(title=f"train.py (Lightning) against a plain loop on {device_name(device)}: steps per second")
    for column in ("model", "batch", "precision", "plain", "Lightning", "ratio", "goal", "+ms/step", "syncs/step"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in results:
        spread = f"{min(row['lightning_steps_per_s']):.1f}-{max(row['lightning_steps_per_s']):.1f}"
        table.add_row(
            row["model"] + (" (compiled)" if row["compile"] else ""),
            f"{row['batch']}x{row['patch']}²x{row['channels']}",
            row["precision"],
            f"{row['plain_median']:.1f}",
            f"{row['lightning_median']:.1f} ({spread})",
            f"{row['ratio']:.3f}",
            f"<= {goal}",
            f"{row['extra_ms_per_step']:.2f}",
            f"{row['syncs_per_step']:.3f}" if "syncs_per_step" in row else "-",
        )
    Console().print(table)
    from denoise.evaluation.report import write_json

    payload = {
        "benchmark": "overhead",
        "device": device_name(device),
        "torch": torch.__version__,
        "lightning": L.__version__,
        "goal": goal,
        "settings": {"steps": steps, "warmup": warmup, "rounds": args.rounds, "compile": args.compile},
        "results": results,
    }
    write_json(json_path, payload)
    Console().print(f"wrote {json_path}")


if __name__ == "__main__":
    main()
