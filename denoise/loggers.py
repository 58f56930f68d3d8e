"""Weights & Biases that never hangs or fails a run because no server answers.

With no credentials (no ``WANDB_API_KEY``, no netrc entry) the run logs offline into the run directory and
the suite prints the ``wandb sync`` command at the end. ``WANDB_MODE`` (online, offline, disabled) always
wins. If an online start fails (server unreachable, bad key) the logger falls back to offline with a warning.
"""

from __future__ import annotations

import netrc
import os
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lightning.pytorch.loggers import WandbLogger


def has_wandb_credentials() -> bool:
    """True when an API key is in the environment or in ~/.netrc for the configured W&B host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
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
    """Lightning's WandbLogger with an automatic offline mode and an offline fallback."""

    def __init__(self, offline: bool | None = None, init_timeout: float = 30.0, **kwargs: Any) -> None:
        import wandb

        mode = wandb_mode(offline)
        kwargs.setdefault("settings", wandb.Settings(init_timeout=init_timeout, silent=True))
        Path(kwargs.get("save_dir") or ".").mkdir(parents=True, exist_ok=True)
        super().__init__(offline=mode == "offline", mode=mode, **kwargs)
        if self._wandb_init.get("anonymous") is None:  # wandb warns about the key even when it is None
            self._wandb_init.pop("anonymous", None)

    @property
    def experiment(self) -> Any:
        try:
            return WandbLogger.experiment.fget(self)
        except Exception as err:
            if self._wandb_init.get("mode") != "online":
                raise
            warnings.warn(f"W&B could not start online ({err}); logging offline instead", stacklevel=2)
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
