"""The non-finite loss guard without a host sync per step: it names the first bad step whenever it is checked,
refuses to write a checkpoint with non-finite weights, and a training step copies nothing to the host."""

from __future__ import annotations

import collections
import traceback
from pathlib import Path

import lightning as L
import pytest
import torch

from denoise.tasks import train
from denoise.training.finite_guard import FiniteLossGuard
from tests.helpers import TINY, compose_cfg


def test_the_first_bad_step_is_named_when_checked() -> None:
    guard = FiniteLossGuard()
    guard.check("nothing recorded")  # no step yet: nothing to say
    for step, loss in enumerate([0.5, 0.4, float("inf"), float("nan"), 0.3]):
        guard.record(torch.tensor(loss), step, epoch=step // 2, batch=step % 2)
    with pytest.raises(
        FloatingPointError, match=r"not finite \(inf\) at global step 2 \(epoch 1, batch 0\), noticed at X"
    ):
        guard.check("X")


def test_finite_losses_pass_and_the_step_log_is_emptied() -> None:
    guard = FiniteLossGuard()
    for step in range(5):
        guard.record(torch.tensor(0.1 * step), step, 0, step)
    guard.check("after five steps")
    assert not guard._positions  # only the steps since the last check are remembered
    guard.record(torch.tensor(float("nan")), 5, 0, 5)
    with pytest.raises(FloatingPointError, match=r"\(nan\) at global step 5 \(epoch 0, batch 5\)"):
        guard.check("later")


def test_other_ranks_are_heard_through_the_gather() -> None:
    """Under DDP each rank gathers every rank's first bad step: the earliest one is named, with its rank."""
    guard = FiniteLossGuard()
    guard.record(torch.tensor(0.2), 7, 1, 3)
    other_rank = torch.tensor([7.0, float("nan")], dtype=torch.float64)
    with pytest.raises(FloatingPointError, match=r"\(nan\) at global step 7 \(epoch 1, batch 3\) on rank 1"):
        guard.check("a gather", all_gather=lambda mine: torch.stack((mine, other_rank)))


def test_a_checkpoint_with_non_finite_weights_is_refused() -> None:
    FiniteLossGuard.refuse_non_finite({"net.w": torch.ones(3), "step": 4}, step=4)
    with pytest.raises(FloatingPointError, match=r"weights are not finite \(net\.b\), so no checkpoint was written"):
        FiniteLossGuard.refuse_non_finite({"net.w": torch.ones(3), "net.b": torch.tensor([1.0, float("inf")])}, 9)


#: tensor methods that copy a value to the host (on a GPU, each makes the CPU wait for the queue)
HOST_READS = ("item", "tolist", "__bool__", "__float__", "__int__", "numpy")
#: host reads that are no device sync on a GPU: anything under the data loader (worker processes, CPU
#: tensors), and torch.optim's own reads of its step counters (kept on the host unless capturable)
LOADER, OPTIMIZER = "site-packages/torch/utils/data/", "site-packages/torch/optim/"


def _fit_and_count_host_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, samples: int, log_every: int = 1000
) -> collections.Counter:
    """Host reads during Trainer.fit by call site (the innermost frames outside torch)."""
    counts: collections.Counter = collections.Counter()
    fitting = [False]
    for name in HOST_READS:
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _original=original, **kwargs):
            if fitting[0]:
                stack = traceback.extract_stack()[:-1]
                if OPTIMIZER not in stack[-1].filename and not any(LOADER in frame.filename for frame in stack):
                    frames = [f for f in stack if "site-packages/torch/" not in f.filename]
                    counts[" <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in frames[-3:][::-1])] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    original_fit = L.Trainer.fit

    def fit(*args, **kwargs):
        fitting[0] = True
        try:
            return original_fit(*args, **kwargs)
        finally:
            fitting[0] = False

    monkeypatch.setattr(L.Trainer, "fit", fit)
    overrides = [o for o in TINY if not o.startswith(("data.samples_per_epoch", "~callbacks.rich_progress_bar"))]
    overrides += [f"data.samples_per_epoch={samples}", f"trainer.log_every_n_steps={log_every}", "logger=csv",
                  "test=false"]  # fmt: skip
    try:
        train(compose_cfg("train", overrides, tmp_path / f"run{samples}-{log_every}"))
    finally:
        monkeypatch.undo()
    return counts


@pytest.mark.slow
def test_a_training_step_reads_nothing_back_from_the_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default callbacks (rich progress bar, checkpoints, LR monitor), the CSV logger and the module: three
    times the steps between two validations read no more values back to the host (the old guard read the loss
    every step, and the progress bar the logged loss). The GPU check counts the real syncs (bench/overhead.py
    --sync-audit, with torch.cuda.set_sync_debug_mode)."""
    few = _fit_and_count_host_reads(tmp_path, monkeypatch, samples=8)  # 2 steps
    many = _fit_and_count_host_reads(tmp_path, monkeypatch, samples=24)  # 6 steps
    assert sum(few.values()) > 0  # the counting works: validation and the checkpoints do read values
    grown = {site: many[site] - few.get(site, 0) for site in many if many[site] > few.get(site, 0)}
    assert not grown, "\n".join(f"{count} more at {site}" for site, count in grown.items())


@pytest.mark.slow
def test_logging_steps_read_only_host_copies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Logging every step: the only reads that grow with the steps are denoise.training.step_log's, of the pinned
    host copies it made without a wait (on a GPU no sync). Lightning's logger connector (a logged tensor made a
    number), its LR monitor (a device tensor per rate), the progress bar and the loss guard used to read the device
    at every logging step: 0.39 syncs a step on the H200."""
    few = _fit_and_count_host_reads(tmp_path, monkeypatch, samples=8, log_every=1)  # 2 steps
    many = _fit_and_count_host_reads(tmp_path, monkeypatch, samples=24, log_every=1)  # 6 steps
    grown = {site: many[site] - few.get(site, 0) for site in many if many[site] > few.get(site, 0)}
    assert grown, "logging every step reads the logged values somewhere"
    elsewhere = {site: count for site, count in grown.items() if not site.startswith("step_log.py")}
    assert not elsewhere, "\n".join(f"{count} more at {site}" for site, count in elsewhere.items())
    metrics = (tmp_path / "run24-1" / "csv" / "metrics.csv").read_text()
    assert "train/loss" in metrics and "lr-Adam" in metrics
