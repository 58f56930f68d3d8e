"""Weights & Biases that never hangs or fails a run because no server answers.

Online when W&B finds a login (``wandb login``, ``WANDB_API_KEY``), else offline into the run directory, with
the ``wandb sync`` command printed at the end. ``WANDB_MODE`` (online, offline, disabled) always wins. If an
online start fails (server unreachable, bad key) the logger falls back to offline with a warning, after at most
``init_timeout`` seconds (``logger.wandb.init_timeout``, 15 by default).
"""

from __future__ import annotations

import csv
import logging
import os
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only

from denoise.data.files import atomic_open

log = logging.getLogger(__name__)


def has_wandb_credentials() -> bool:
    """True when W&B itself finds a login for its configured host (``wandb login``, ``WANDB_API_KEY``, its
    settings), asked without a prompt and without contacting the server. wandb 0.31 stores ``wandb login``
    under its own default host, so reading ``~/.netrc`` for api.wandb.ai here would miss it."""
    import wandb

    try:
        return bool(wandb.login(prompt=False, verify=False))
    except TypeError:  # wandb releases before login(prompt=...): their own key lookup
        return bool(getattr(getattr(wandb, "api", None), "api_key", None))
    except Exception:  # a malformed key or settings file: W&B could not log in either
        return False


def wandb_mode(offline: bool | None) -> str:
    """online / offline / disabled: ``WANDB_MODE`` first, then ``offline``, then offline without credentials."""
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    if env in {"online", "offline", "disabled", "dryrun"}:
        return "offline" if env == "dryrun" else env
    if offline is not None:
        return "offline" if offline else "online"
    return "online" if has_wandb_credentials() else "offline"


class ResilientWandbLogger(WandbLogger):
    """Lightning's WandbLogger with an automatic offline mode, an offline fallback, and logging that outlives
    W&B: if its service process dies (on preemption SLURM signals every process of the job), training goes on
    to its checkpoint and W&B logging stops with one warning."""

    def __init__(self, offline: bool | None = None, init_timeout: float = 15.0, **kwargs: Any) -> None:
        import wandb

        mode = wandb_mode(offline)
        self.init_timeout = init_timeout
        kwargs.setdefault("settings", wandb.Settings(init_timeout=init_timeout, silent=True))
        Path(kwargs.get("save_dir") or ".").mkdir(parents=True, exist_ok=True)
        # Lightning refuses log_model offline (the default without a login); W&B itself stores artifacts in the
        # offline run and `wandb sync` uploads them: the choice is set after Lightning's check
        log_model = kwargs.pop("log_model", False)
        super().__init__(offline=mode == "offline", mode=mode, log_model=False, **kwargs)
        self._log_model = log_model
        if self._wandb_init.get("anonymous") is None:  # wandb warns about the key even when it is None
            self._wandb_init.pop("anonymous", None)
        self.lost: str | None = None  # why W&B stopped answering, once it has

    def _guarded(self, what: str, call: Callable[[], Any]) -> None:
        if self.lost is not None:
            return
        try:
            call()
        except Exception as err:
            self.lost = f"{type(err).__name__}: {err}"
            warnings.warn(
                f"W&B stopped answering during {what} ({self.lost}); training goes on without W&B logging",
                stacklevel=3,
            )

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self._guarded("log_metrics", lambda: WandbLogger.log_metrics(self, metrics, step))

    @rank_zero_only
    def log_hyperparams(self, params: Any) -> None:
        self._guarded("log_hyperparams", lambda: WandbLogger.log_hyperparams(self, params))

    @rank_zero_only
    def log_image(self, key: str, images: list[Any], step: int | None = None, **kwargs: Any) -> None:
        self._guarded("log_image", lambda: WandbLogger.log_image(self, key, images, step, **kwargs))

    @rank_zero_only
    def log_table(self, key: str, *args: Any, **kwargs: Any) -> None:
        self._guarded("log_table", lambda: WandbLogger.log_table(self, key, *args, **kwargs))

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        self._guarded("after_save_checkpoint", lambda: WandbLogger.after_save_checkpoint(self, checkpoint_callback))

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self._guarded("finalize", lambda: WandbLogger.finalize(self, status))

    @rank_zero_only
    def record_summary(self, values: Mapping[str, Any]) -> None:
        """Set the run's summary: what the run is judged by (the best val/psnr, not the last epoch's), its size."""
        self._guarded("record_summary", lambda: self.experiment.summary.update(dict(values)))

    @property
    def experiment(self) -> Any:
        online_start = self._experiment is None and self._wandb_init.get("mode") == "online"
        if online_start:
            log.info("W&B: starting the run online (offline instead if the server does not answer within %g s)",
                     self.init_timeout)  # fmt: skip
        started = time.monotonic()
        try:
            return WandbLogger.experiment.fget(self)
        except Exception as err:
            if self._wandb_init.get("mode") != "online":
                raise
            waited = time.monotonic() - started
            warnings.warn(
                f"W&B could not start online after {waited:.0f} s ({err}); logging offline instead", stacklevel=2
            )
            self._wandb_init["mode"] = "offline"
            self._offline = True
            self._experiment = None
            return WandbLogger.experiment.fget(self)

    def sync_command(self) -> str | None:
        """``wandb sync <dir>`` for an offline run, else None."""
        run = self._experiment
        if run is None or not self._offline or getattr(run, "dir", None) is None:
            return None
        return f"wandb sync {Path(run.dir).parent}"


def finish_wandb() -> None:
    """``wandb.finish()`` that never fails the run: on preemption SLURM signals W&B's service process too,
    and a lost connection then must not turn a clean checkpoint-and-stop into a failed job."""
    import wandb

    try:
        wandb.finish()
    except Exception as err:  # the run's files are on disk already; `wandb sync` uploads them later
        warnings.warn(f"W&B did not finish cleanly ({type(err).__name__}: {err}); its files stay on disk", stacklevel=2)


class _KeepingWriter(ExperimentWriter):
    """Lightning's CSV writer, except that an existing ``metrics.csv`` is continued, not deleted (Lightning
    removes it whenever the folder exists, so a resumed run lost every row logged before the interruption), and
    a header change rewrites the file atomically."""

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if path.is_file():
            with path.open(newline="") as handle:
                self.metrics_keys = list(next(csv.reader(handle), []))

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        path = Path(self.metrics_file_path)
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        with atomic_open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fieldnames)
            writer.writeheader()
            writer.writerows(rows)


class ResumableCSVLogger(CSVLogger):
    """``logger=csv``: Lightning's CSVLogger whose ``metrics.csv`` keeps its whole history across resumes."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _KeepingWriter(log_dir=self.log_dir)
        return self._experiment
