"""One process per run directory: ckpt_path=last refuses a run that is still alive, and a killed run's lock
does not block its resume. And a checkpoint resumes only into the network it was trained as."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from omegaconf import DictConfig

from denoise.tasks import train
from denoise.training.runlock import LOCK_NAME, RunDirectoryBusyError, RunLock, holder
from tests.helpers import ROOT, TINY, compose_cfg, read_results


def _hold_lock(run: Path) -> subprocess.Popen:
    """Another process that holds ``run``'s lock, as a live training would, until it is killed."""
    code = f"from denoise.training.runlock import RunLock\nlock = RunLock({str(run)!r})\nlock.acquire()\n"
    code += "import time\ntime.sleep(600)"
    process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    for _ in range(200):
        if holder(run) is not None:
            return process
        time.sleep(0.05)
    process.kill()
    raise AssertionError("the helper process never took the lock")


def test_the_lock_names_its_holder_and_dies_with_it(tmp_path: Path) -> None:
    other = _hold_lock(tmp_path)
    try:
        info = holder(tmp_path)
        assert info is not None and info["pid"] == other.pid
        with pytest.raises(RunDirectoryBusyError, match=rf"in use by a running training \(pid {other.pid} on "):
            RunLock(tmp_path).acquire()
    finally:
        other.send_signal(signal.SIGKILL)  # as a crash or kill -9 would: no clean-up runs
        other.wait()
    assert (tmp_path / LOCK_NAME).exists() and holder(tmp_path) is None  # a stale file, but free
    with RunLock(tmp_path):
        assert holder(tmp_path) is not None
    assert not (tmp_path / LOCK_NAME).exists()


@pytest.mark.slow
def test_ckpt_path_last_refuses_a_live_run_and_resumes_a_killed_one(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    first = logs / "train" / "runs" / "2026-01-01_00-00-00_000000"
    (first / ".hydra").mkdir(parents=True)
    train(compose_cfg("train", [*TINY, "logger=none"], first, log_dir=logs))
    relaunch = logs / "train" / "runs" / "2026-01-01_00-00-01_000000"
    overrides = [*TINY, "logger=none", "ckpt_path=last", "trainer.max_epochs=2"]
    alive = _hold_lock(first)
    try:
        with pytest.raises(RunDirectoryBusyError, match=rf"ckpt_path=last: {first} is in use .*pid {alive.pid}"):
            train(compose_cfg("train", overrides, relaunch, log_dir=logs))
        assert read_results(first)["global_step"] == 2  # untouched
    finally:
        alive.send_signal(signal.SIGKILL)
        alive.wait()
    train(compose_cfg("train", overrides, relaunch, log_dir=logs))  # the dead run's lock is no obstacle
    assert read_results(first)["global_step"] == 4


@pytest.mark.slow
def test_a_checkpoint_resumes_only_into_its_own_network(cfg_train: DictConfig, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(cfg_train)
    last = run / "checkpoints" / "last.ckpt"
    with pytest.raises(ValueError, match=r"trained on 3-channel images but data gives 1; set data\.grayscale=false"):
        train(compose_cfg("train", [*TINY, "logger=none", f"ckpt_path={last}", "data.grayscale=true"], tmp_path / "g"))
    wider = [*TINY, "logger=none", f"ckpt_path={last}", "model.net.channels=16"]
    with pytest.raises(
        ValueError, match=r"holds REDNet with channels=8 but this run builds channels=16; .*model\.net\.channels=8"
    ):
        train(compose_cfg("train", wider, tmp_path / "w"))
