"""Preemption-safe training: a checkpoint on SIGTERM/SIGUSR1, and random-number state in every checkpoint.

Lightning already turns SIGTERM into a clean stop after the current batch (``SIGTERMException``); this
callback writes ``last.ckpt`` at that moment so nothing since the last epoch is lost, and routes SIGUSR1
(what clusters send before a time limit) the same way. Under SLURM, Lightning's ``SLURMEnvironment`` owns
SIGUSR1 (checkpoint + ``scontrol requeue``), so the callback leaves it alone there.

The random-number states (torch, CUDA, NumPy, Python) go into the checkpoint too: random crops, noise and
shuffling then continue exactly where they stopped, so a run resumed at an epoch boundary ends with the same
weights as one never interrupted. They are stored as tensors and plain numbers, loadable with
``weights_only=True``.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import signal
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)

#: the exit status of a run stopped by SIGTERM/SIGUSR1 after saving last.ckpt: EX_TEMPFAIL of sysexits.h, "a
#: temporary failure; run it again" (``ckpt_path=last`` continues it), distinct from success (0) and errors (1)
PREEMPTED_EXIT_CODE = 75


class PreemptedExit(SystemExit):
    """Leave the process with :data:`PREEMPTED_EXIT_CODE` once the pre-emption checkpoint is on disk."""

    def __init__(self) -> None:
        super().__init__(PREEMPTED_EXIT_CODE)


def collect_rng_states() -> dict[str, Any]:
    """The generators that training draws from, as tensors and plain numbers (weights_only safe)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, state, gauss_next = random.getstate()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": str(name),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": int(version), "state": list(state), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Put back what :func:`collect_rng_states` recorded."""
    torch.set_rng_state(states["torch"])
    numpy_state = states["numpy"]
    np.random.set_state(
        (
            numpy_state["name"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    python_state = states["python"]
    random.setstate((python_state["version"], tuple(python_state["state"]), python_state["gauss_next"]))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _note_sigterm(trainer: L.Trainer, signum: int, _frame: Any) -> None:
    """Lightning's SIGTERM notifier without its collective: Lightning 2.6 broadcasts from inside the signal
    handler, which under SLURM (every rank signalled at once) meets another collective and hangs the job until
    SLURM kills it, with no checkpoint. The flag alone is enough: the training loop broadcasts rank 0's flag
    before every step, so all ranks stop at the same batch."""
    connector = trainer._signal_connector
    log.info("[rank %d] Received SIGTERM: stopping after this batch", trainer.global_rank)
    if not connector.received_sigterm and trainer.strategy.launcher is not None:
        trainer.strategy.launcher.kill(signum)  # the processes this one started (DDP on one machine)
    connector.received_sigterm = True


class PreemptionCheckpoint(Callback):
    """On SIGTERM (or SIGUSR1 outside SLURM) finish the batch, save ``last.ckpt``, stop cleanly."""

    def __init__(self, signals: tuple[str, ...] = ("SIGUSR1",)) -> None:
        # SIGTERM is Lightning's own; these extra signals are forwarded to it
        self.extra_signals = [signal.Signals[name] for name in signals]
        self._previous: dict[signal.Signals, Any] = {}

    def _owned_by_slurm(self, trainer: L.Trainer, signum: signal.Signals) -> bool:
        environment = trainer._accelerator_connector.cluster_environment
        return (
            isinstance(environment, SLURMEnvironment)
            and environment.auto_requeue
            and environment.requeue_signal == signum
        )

    @staticmethod
    def _forward_to_sigterm(signum: int, _frame: Any) -> None:
        log.info("Received %s: stopping after this batch like SIGTERM", signal.Signals(signum).name)
        os.kill(os.getpid(), signal.SIGTERM)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # before Lightning registers its SIGTERM handler (Trainer._run): ours replaces its notifier
        trainer._signal_connector._sigterm_notifier_fn = functools.partial(_note_sigterm, trainer)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for signum in self.extra_signals:
            if self._owned_by_slurm(trainer, signum):
                continue
            self._previous[signum] = signal.signal(signum, self._forward_to_sigterm)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    @staticmethod
    def checkpoint_path(trainer: L.Trainer) -> Path:
        """``last.ckpt`` beside the ModelCheckpoint's files (the run's ``checkpoints/``)."""
        checkpoint = next((cb for cb in trainer.callbacks if isinstance(cb, ModelCheckpoint)), None)
        directory = checkpoint.dirpath if checkpoint is not None and checkpoint.dirpath else None
        if directory is None:
            directory = os.path.join(trainer.default_root_dir, "checkpoints")
        return Path(directory) / f"{ModelCheckpoint.CHECKPOINT_NAME_LAST}{ModelCheckpoint.FILE_EXTENSION}"

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, SIGTERMException) or trainer.state.fn != TrainerFn.FITTING:
            return
        flush = getattr(pl_module, "flush_step_log", None)
        if callable(flush):  # the losses of the last logging steps, still on their way to the host
            flush()
        path = self.checkpoint_path(trainer)
        trainer.save_checkpoint(path, weights_only=False)  # the full state: optimizer, loops, callbacks
        if trainer.is_global_zero:
            log.warning(
                "Stopped by a signal at global step %d (in epoch %d); saved %s. Resume with ckpt_path=last "
                "(or ckpt_path=%s).",
                trainer.global_step,
                trainer.current_epoch,
                path,
                path,
            )
