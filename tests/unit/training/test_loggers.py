"""W&B never hangs or fails a run: offline without credentials, and logging that outlives a dead service."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from denoise.training.loggers import ResilientWandbLogger, wandb_mode


@pytest.mark.slow  # W&B started in fresh processes
def test_mode_follows_the_environment_then_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """WANDB_MODE wins, then ``offline=``, then W&B's own login (asked in a fresh process: wandb keeps its
    settings for the life of a process, and earlier tests here ran it offline)."""
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode(False) == "disabled"
    monkeypatch.setenv("WANDB_MODE", "dryrun")
    assert wandb_mode(False) == "offline"
    check = (
        "from denoise.training.loggers import wandb_mode; print(wandb_mode(None), wandb_mode(True), wandb_mode(False))"
    )
    assert _in_fresh_home(tmp_path, check).stdout.split() == ["offline", "offline", "online"]
    with_key = _in_fresh_home(tmp_path, check, WANDB_API_KEY="x" * 40).stdout.split()
    assert with_key == ["online", "offline", "online"]


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


def _in_fresh_home(home: Path, code: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a new Python whose HOME is ``home`` (W&B reads its login from there)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "HOME": str(home), "WANDB_SILENT": "true", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_a_wandb_login_is_seen(tmp_path: Path) -> None:
    """`wandb login` (which wandb 0.31 files under its own default host, not api.wandb.ai) makes runs online;
    without it they are offline."""
    check = "from denoise.training.loggers import wandb_mode; print(wandb_mode(None))"
    assert _in_fresh_home(tmp_path, check).stdout.split() == ["offline"]
    wandb_cli = Path(sys.executable).with_name("wandb")
    login = [str(wandb_cli) if wandb_cli.exists() else shutil.which("wandb") or "wandb", "login", "--no-verify"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    done = subprocess.run(
        [*login, "0123456789abcdef0123456789abcdef01234567"],
        env={**clean, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert _in_fresh_home(tmp_path, check).stdout.split()[-1] == "online"


@pytest.mark.slow
def test_an_unanswering_server_costs_at_most_the_init_timeout(tmp_path: Path) -> None:
    """A login but no server (a closed port): the run goes offline after about logger.wandb.init_timeout, and
    says so, instead of hanging."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = (
        "import time, warnings\n"
        "from denoise.training.loggers import ResilientWandbLogger\n"
        f"logger = ResilientWandbLogger(project='t', save_dir={str(tmp_path)!r}, init_timeout=3)\n"
        "start = time.monotonic()\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    logger.experiment\n"
        "print('offline' if logger._offline else 'online', round(time.monotonic() - start, 1))\n"
        "print([str(w.message) for w in caught if 'could not start online' in str(w.message)])\n"
        "import wandb; wandb.finish()\n"
    )
    started = time.monotonic()
    done = _in_fresh_home(
        tmp_path,
        code,
        WANDB_API_KEY="0123456789abcdef0123456789abcdef01234567",
        WANDB_BASE_URL=f"http://127.0.0.1:{port}",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    mode, seconds = done.stdout.splitlines()[0].split()
    assert mode == "offline" and float(seconds) < 10, done.stdout
    assert "could not start online after" in done.stdout
    assert time.monotonic() - started < 60
