"""Lightning's rich progress bar, without a host-device synchronisation or a redraw every training step; and
plain progress lines for runs without a terminal (:class:`PlainProgress`).

A metric logged with ``prog_bar=True`` is turned into a Python number for the bar after every batch, which
copies it from the GPU and makes the CPU wait for the whole queue of launched work: the GPU idles while
the next step is prepared. This bar shows the training loss of the latest logging step that has reached the
host without a wait (``DenoiseModule.train_loss_shown``, :mod:`denoise.training.step_log`). And Lightning 2.6 redraws
the bar after every batch, a few milliseconds of CPU each time (5% of a NAFNet-small step on 2 cores); this
one redraws at most every ``min_interval`` seconds (and at the end of each epoch), as tqdm does.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichModelSummary, RichProgressBar, Timer
from lightning.pytorch.utilities.model_summary import get_formatted_model_size, get_human_readable_count

from denoise.data.console import show_table

log = logging.getLogger(__name__)


class ProgressBar(RichProgressBar):
    """RichProgressBar that reads the training loss only at logging steps and redraws at most every
    ``min_interval`` seconds."""

    def __init__(self, min_interval: float = 0.25, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.min_interval = min_interval
        if not sys.stdout.isatty():  # in a pipe a bar draws only its last frame, into the log: PlainProgress reports
            self.disable()
        self._loss: float | None = None
        self._drawn = 0.0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        shown = getattr(pl_module, "train_loss_shown", None)  # already on the host (denoise.training.step_log)
        if shown is not None:
            self._loss = shown
        now = time.monotonic()
        last_batch = batch_idx + 1 >= trainer.num_training_batches
        if now - self._drawn >= self.min_interval or last_batch or self.train_progress_bar_id is None:
            self._drawn = now
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def _get_train_description(self, current_epoch: int) -> str:
        """``Epoch 3/20``, counted from 1 as every other line of the suite counts (Lightning's bar said 2/19)."""
        total = self.trainer.max_epochs if self.trainer.max_epochs not in (None, -1) else "?"
        return f"{f'Epoch {current_epoch + 1}/{total}':{len(self.validation_description)}}"

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        if self._loss is not None:
            items["loss"] = f"{self._loss:.4g}"
        return items


class ModelSummary(RichModelSummary):
    """The network's layers and sizes at the start of training: a rich table on a terminal, plain rows in a pipe;
    the FLOPs column only where Lightning counted some (it counts none without an example input, and said
    "Total FLOPs: 0")."""

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs: Any,
    ) -> None:
        kept = [(name, values) for name, values in summary_data if name != "FLOPs" or total_flops]
        columns = ["", *(name for name, _ in kept[1:])] if kept and kept[0][0] == " " else [n for n, _ in kept]
        rows = list(zip(*(values for _, values in kept), strict=True))
        show_table("the network", columns, rows, right=("Params", "FLOPs", "Params per Device"))
        frozen = total_parameters - trainable_parameters
        sizes = [get_human_readable_count(int(n)).strip() for n in (trainable_parameters, frozen, total_parameters)]
        flops = f", {get_human_readable_count(total_flops)} FLOPs" if total_flops else ""
        in_all = f"{sizes[2]} in all ({get_formatted_model_size(model_size)} MB){flops}"
        print(f"parameters: {sizes[0]} trainable, {sizes[1]} frozen, {in_all}", flush=True)


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class PlainProgress(L.Callback):
    """Progress as log lines for runs without a terminal (SLURM, ``nohup``, a pipe), where the rich bar draws
    nothing: every ``every_seconds`` (and at each epoch's end) ``epoch, step, loss, it/s, ETA``, and after each
    validation its scores, through the ``logging`` module, so they reach the console and ``train.log`` alike.
    ``when``: ``auto`` (only without a terminal), ``always`` or ``never``."""

    def __init__(self, every_seconds: float = 30.0, when: str = "auto") -> None:
        if when not in ("auto", "always", "never"):
            raise ValueError(f"callbacks.plain_progress.when={when!r}: expected auto, always or never")
        self.every_seconds = every_seconds
        self.when = when
        self._started = self._last_time = 0.0
        self._last_step = 0
        self.active = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        import sys

        self.active = self.when == "always" or (self.when == "auto" and not sys.stdout.isatty())

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = self._last_time = time.monotonic()
        self._last_step = trainer.global_step

    def _eta(self, trainer: L.Trainer, rate: float) -> str:
        remaining: list[float] = []
        total = trainer.estimated_stepping_batches
        if rate > 0 and total not in (None, float("inf")) and math.isfinite(total):
            remaining.append((total - trainer.global_step) / rate)
        timer = next((cb for cb in trainer.callbacks if isinstance(cb, Timer)), None)
        left = timer.time_remaining() if timer is not None else None
        if left is not None:
            remaining.append(left)
        return _clock(min(remaining)) if remaining else "?"

    def _line(self, trainer: L.Trainer, pl_module: L.LightningModule, now: float) -> None:
        steps = trainer.global_step - self._last_step
        rate = steps / (now - self._last_time) if now > self._last_time else 0.0
        loss = getattr(pl_module, "train_loss_shown", None)
        epochs = trainer.max_epochs if trainer.max_epochs not in (None, -1) else "?"
        log.info("epoch %d/%s step %d loss %s %.2f it/s elapsed %s ETA %s", trainer.current_epoch + 1, epochs,
                 trainer.global_step, "-" if loss is None else f"{loss:.4g}", rate, _clock(now - self._started),
                 self._eta(trainer, rate))  # fmt: skip
        self._last_time, self._last_step = now, trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        now = time.monotonic()
        if self.active and trainer.is_global_zero and now - self._last_time >= self.every_seconds:
            self._line(trainer, pl_module, now)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.active and trainer.is_global_zero:
            self._line(trainer, pl_module, time.monotonic())

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.active or not trainer.is_global_zero or trainer.sanity_checking:
            return
        scores = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/") and v.numel() == 1}
        # the checkpoint callbacks run after this one: their best is the one before this validation
        monitor = next((cb for cb in trainer.checkpoint_callbacks if getattr(cb, "monitor", None)), None)
        best = None
        if monitor is not None and monitor.monitor in scores:
            before = monitor.best_model_score
            now = scores[monitor.monitor]
            best = now if before is None else (max if monitor.mode == "max" else min)(float(before), now)
        text = ", ".join(f"{k} {v:.4f}" for k, v in sorted(scores.items()))
        log.info("validation after epoch %d (step %d): %s%s", trainer.current_epoch + 1, trainer.global_step, text,
                 "" if best is None else f" (best {monitor.monitor} {best:.4f})")  # fmt: skip
