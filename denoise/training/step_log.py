"""What training reports at its logging steps, without ever making the host wait for the GPU.

Reading a GPU number on the host (``loss.item()``, ``float(loss)``, ``torch.tensor(lr, device=...)``) waits until
every kernel launched so far has run; the GPU then idles while the host prepares the next step. Lightning does
that at every logging step (its logger connector turns logged tensors into numbers, the LR monitor builds
device tensors, a progress bar reads the loss): four waits every ``log_every_n_steps``, which cost NAFNet-small
10% and a compiled DnCNN 18% of their step rate on an H200 (the sync audit of ``bench/overhead.py``).

:class:`StepScalars` instead copies a logging step's scalars into pinned host memory without blocking
(``non_blocking=True``, a CUDA event recorded after the copy) and hands them over once the event has passed:
usually at the next logging step, at the latest at the end of the epoch, where the host waits anyway. Values
keep the step they belong to. On a CPU the copy is immediate and nothing changes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

import lightning as L
import torch
from lightning.pytorch.loggers import Logger


class StepScalars:
    """Scalars of chosen steps, on their way to the host: :meth:`push` them, :meth:`ready` gives the arrived."""

    def __init__(self) -> None:
        self._pending: deque[tuple[int, list[str], torch.Tensor, torch.cuda.Event | None]] = deque()

    def push(self, step: int, values: Mapping[str, torch.Tensor]) -> None:
        names = list(values)
        stacked = torch.stack([value.detach().reshape(()).to(torch.float64) for value in values.values()])
        if stacked.is_cuda:
            host = torch.empty(stacked.shape, dtype=stacked.dtype, pin_memory=True)
            host.copy_(stacked, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
        else:
            host, event = stacked, None
        self._pending.append((step, names, host, event))

    def ready(self, wait: bool = False) -> list[tuple[int, dict[str, float]]]:
        """The pushed steps whose values have arrived, oldest first (all of them with ``wait``)."""
        arrived = []
        while self._pending:
            step, names, host, event = self._pending[0]
            if event is not None and not wait and not event.query():
                break
            if event is not None:
                event.synchronize()
            self._pending.popleft()
            arrived.append((step, dict(zip(names, host.tolist(), strict=True))))
        return arrived


def log_to(loggers: Iterable[Logger], step: int, metrics: Mapping[str, float]) -> None:
    """Plain numbers to every logger, at their own step (W&B and TensorBoard order by it; the CSV keeps it)."""
    for logger in loggers:
        logger.log_metrics(dict(metrics), step=step)


class LearningRates(L.Callback):
    """Lightning's ``LearningRateMonitor(logging_interval="step")`` under the same names (``lr-Adam``,
    ``lr-Adam/pg1`` ...), from the optimizers' Python floats: no device tensor, no host wait."""

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: object) -> None:
        if not trainer.loggers or trainer.global_step % max(int(trainer.log_every_n_steps), 1):
            return
        rates: dict[str, float] = {}
        for index, optimizer in enumerate(trainer.optimizers):
            name = f"lr-{type(optimizer).__name__}" + (f"-{index}" if len(trainer.optimizers) > 1 else "")
            for group, params in enumerate(optimizer.param_groups):
                rates[name if group == 0 else f"{name}/pg{group + 1}"] = float(params["lr"])
        if trainer.is_global_zero:
            log_to(trainer.loggers, trainer.global_step, rates)
