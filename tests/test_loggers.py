"""W&B never hangs or fails a run: offline without credentials, and logging that outlives a dead service."""

from __future__ import annotations

from pathlib import Path

import pytest

from denoise.loggers import ResilientWandbLogger, wandb_mode


def test_mode_follows_the_environment_then_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert wandb_mode(None) == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_mode(None) == "online" and wandb_mode(True) == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode(False) == "disabled"


def test_logging_goes_on_when_the_wandb_service_dies(tmp_path: Path) -> None:
    logger = ResilientWandbLogger(project="t", save_dir=str(tmp_path), offline=True)
    logger.log_metrics({"train/loss": 1.0}, step=0)
    assert logger.lost is None
    calls = []

    def dead(*args: object, **kwargs: object) -> None:
        calls.append(args)
        raise ConnectionResetError("Connection lost")

    logger.experiment.log = dead
    with pytest.warns(UserWarning, match="W&B stopped answering during log_metrics.*Connection lost"):
        logger.log_metrics({"train/loss": 0.5}, step=1)
    logger.log_metrics({"train/loss": 0.4}, step=2)  # no second warning, no exception, no more calls
    logger.log_image("val/examples", images=[], step=2)
    assert logger.lost == "ConnectionResetError: Connection lost" and len(calls) == 1
    import wandb

    wandb.finish()
