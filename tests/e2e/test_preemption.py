"""Preemption: SIGTERM/SIGUSR1 mid-run writes a checkpoint and exits with the "pre-empted, resumable" status 75;
the resumed run continues in the same run directory and W&B run and ends with the uninterrupted run's weights,
bit for bit, whether it stopped on an epoch boundary or in the middle of an epoch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from denoise.training.preemption import PREEMPTED_EXIT_CODE
from tests.helpers import TINY, read_results, run_cli

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
    assert stopped.returncode == PREEMPTED_EXIT_CODE == 75, stopped.stderr[-3000:]
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
    _assert_bit_exact(uninterrupted, run)


@pytest.mark.parametrize("workers", [0, 2])
def test_sigusr1_mid_epoch_resumes_bit_exact(uninterrupted: Path, tmp_path: Path, workers: int) -> None:
    """Stopped after batch 1 of epoch 1 (global step 6), resumed: the same samples, in the same order, as if
    never stopped (the loader starts after the batches the epoch already trained on), also with loader workers."""
    run = tmp_path / "run"
    stopped = run_cli(
        "train.py",
        *RUN,
        f"data.num_workers={workers}",
        "logger=none",
        KILL,
        "+callbacks.kill.signal_name=SIGUSR1",
        "+callbacks.kill.epoch=1",
        "+callbacks.kill.batch=1",
        run_dir=run,
    )
    assert stopped.returncode == PREEMPTED_EXIT_CODE, stopped.stderr[-3000:]
    assert "Stopped by a signal at global step 6 (in epoch 1)" in stopped.stdout
    last = run / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 6

    # an explicit checkpoint path inside a run continues that run too
    resumed = run_cli(
        "train.py", *RUN, f"data.num_workers={workers}", "logger=none", f"ckpt_path={last}", run_dir=tmp_path / "re"
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert read_results(run)["global_step"] == read_results(uninterrupted)["global_step"] == 12
    _assert_bit_exact(uninterrupted, run)


def _assert_bit_exact(reference: Path, continued: Path) -> None:
    theirs, ours = _weights(reference / "checkpoints" / "last.ckpt"), _weights(continued / "checkpoints" / "last.ckpt")
    assert theirs.keys() == ours.keys()
    different = [k for k in theirs if not torch.equal(theirs[k], ours[k])]
    assert not different, different
    assert read_results(continued)["val/psnr"] == read_results(reference)["val/psnr"]
    assert read_results(continued)["test/psnr"] == read_results(reference)["test/psnr"]


def test_on_device_batches_resume_bit_exact(tmp_path: Path) -> None:
    """data.on_device=true: batch i of epoch e is drawn from its own seed, so a mid-epoch resume draws what the
    uninterrupted run drew."""
    on_device = [*RUN, "data.on_device=true", "logger=none"]
    reference = tmp_path / "reference"
    assert run_cli("train.py", *on_device, run_dir=reference).returncode == 0
    run = tmp_path / "run"
    signal_at = [KILL, "+callbacks.kill.epoch=1", "+callbacks.kill.batch=2"]
    stopped = run_cli("train.py", *on_device, *signal_at, run_dir=run)
    assert stopped.returncode == PREEMPTED_EXIT_CODE, stopped.stderr[-3000:]
    last = run / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 7
    resumed = run_cli("train.py", *on_device, f"ckpt_path={last}", run_dir=tmp_path / "re")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _assert_bit_exact(reference, run)


def test_sigterm_during_the_test_exits_75_and_the_resume_finishes_the_test(tmp_path: Path) -> None:
    """Lightning's SIGTERMException is a SystemExit: during the test phase it used to end the run with status 0
    and no results.json. Now it is a pre-emption like any other, and ckpt_path=last tests and writes results."""
    logs = tmp_path / "logs"
    run = logs / "train" / "runs" / "interrupted"
    common = [*TINY, "logger=csv", f"paths.log_dir={logs}"]
    stopped = run_cli("train.py", *common, KILL, "+callbacks.kill.stage=test", run_dir=run)
    assert stopped.returncode == PREEMPTED_EXIT_CODE, stopped.stderr[-3000:]
    assert "Pre-empted during the test" in stopped.stdout + stopped.stderr
    assert not (run / "results.json").exists()
    resumed = run_cli("train.py", *common, "ckpt_path=last", run_dir=logs / "train" / "runs" / "relaunch")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    results = read_results(run)
    assert results["test/psnr"] > 0 and results["global_step"] == 2
    import csv

    with (run / "csv" / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [bool(row["val/psnr"]) for row in rows] == [True, False]  # the first launch's validation row is kept
    assert [bool(row["test/psnr"]) for row in rows] == [False, True]  # the relaunch's test row is added
