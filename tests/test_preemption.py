"""Preemption: SIGTERM/SIGUSR1 mid-run writes a checkpoint and exits cleanly; the resumed run continues in the
same run directory and W&B run and ends where an uninterrupted run ends."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from .conftest import TINY, read_results, run_cli

pytestmark = pytest.mark.slow

#: 4 batches per epoch, 3 epochs, bit-exact kernels
RUN = [
    *[o for o in TINY if not o.startswith(("data.samples_per_epoch", "trainer.max_epochs"))],
    "data.samples_per_epoch=16",
    "trainer.max_epochs=3",
    "trainer.deterministic=true",
    "data.num_workers=0",
]
KILL = "+callbacks.kill._target_=tests.fixtures.signals.SignalAt"


def _weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return torch.load(ckpt, weights_only=True)["state_dict"]


def _wandb_ids(run: Path) -> list[str]:
    return sorted(p.name.rsplit("-", 1)[-1] for p in (run / "wandb").glob("offline-run-*"))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("reference") / "run"
    result = run_cli("train.py", *RUN, "logger=none", run_dir=run)
    assert result.returncode == 0, result.stderr[-3000:]
    return run


def test_sigterm_on_an_epoch_boundary_resumes_to_identical_weights(uninterrupted: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    run = logs / "train" / "runs" / "interrupted"
    stopped = run_cli(
        "train.py", *RUN, "logger=wandb", f"paths.log_dir={logs}", KILL, "+callbacks.kill.epoch=0", run_dir=run
    )
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    assert "Stopped by a signal at global step 4" in stopped.stdout
    assert not (run / "results.json").exists()  # it stopped before the end
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 4

    # ckpt_path=last: the newest run of the task, continued in its own directory and W&B run
    relaunch = logs / "train" / "runs" / "relaunch"
    resumed = run_cli("train.py", *RUN, "logger=wandb", f"paths.log_dir={logs}", "ckpt_path=last", run_dir=relaunch)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not (relaunch / "results.json").exists() and (relaunch / ".hydra").is_dir()
    ids = _wandb_ids(run)
    assert len(ids) == 2 and ids[0] == ids[1], f"one W&B run id across the restart, got {ids}"

    reference, continued = read_results(uninterrupted), read_results(run)
    assert continued["global_step"] == reference["global_step"] == 12
    theirs, ours = _weights(uninterrupted / "checkpoints" / "last.ckpt"), _weights(run / "checkpoints" / "last.ckpt")
    assert theirs.keys() == ours.keys()
    assert max((theirs[k].float() - ours[k].float()).abs().max().item() for k in theirs) <= 1e-6
    assert continued["val/psnr"] == pytest.approx(reference["val/psnr"], abs=1e-4)


def test_sigusr1_mid_epoch_resumes_within_0_05_db(uninterrupted: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    stopped = run_cli(
        "train.py",
        *RUN,
        "logger=none",
        KILL,
        "+callbacks.kill.signal_name=SIGUSR1",
        "+callbacks.kill.epoch=1",
        "+callbacks.kill.batch=1",
        run_dir=run,
    )
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    assert "Stopped by a signal at global step 6 (in epoch 1)" in stopped.stdout
    last = run / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 6

    # an explicit checkpoint path inside a run continues that run too
    resumed = run_cli("train.py", *RUN, "logger=none", f"ckpt_path={last}", run_dir=tmp_path / "relaunch")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    reference, continued = read_results(uninterrupted), read_results(run)
    assert continued["global_step"] == reference["global_step"] == 12
    assert abs(continued["val/psnr"] - reference["val/psnr"]) <= 0.05
