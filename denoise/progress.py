"""Lightning's rich progress bar, without a host-device synchronisation or a redraw every training step.

A metric logged with ``prog_bar=True`` is turned into a Python number for the bar after every batch, which
copies it from the GPU and makes the CPU wait for the whole queue of launched work: the GPU idles while
the next step is prepared. This bar shows the training loss of the latest logging step that has reached the
host without a wait (``DenoiseModule.train_loss_shown``, :mod:`denoise.step_log`). And Lightning 2.6 redraws
the bar after every batch, a few milliseconds of CPU each time (5% of a NAFNet-small step on 2 cores); this
one redraws at most every ``min_interval`` seconds (and at the end of each epoch), as tqdm does.
"""

from __future__ import annotations

import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar


class ProgressBar(RichProgressBar):
    """RichProgressBar that reads the training loss only at logging steps and redraws at most every
    ``min_interval`` seconds."""

    def __init__(self, min_interval: float = 0.25, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.min_interval = min_interval
        self._loss: float | None = None
        self._drawn = 0.0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        shown = getattr(pl_module, "train_loss_shown", None)  # already on the host (denoise.step_log)
        if shown is not None:
            self._loss = shown
        now = time.monotonic()
        last_batch = batch_idx + 1 >= trainer.num_training_batches
        if now - self._drawn >= self.min_interval or last_batch or self.train_progress_bar_id is None:
            self._drawn = now
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        if self._loss is not None:
            items["loss"] = f"{self._loss:.4g}"
        return items
