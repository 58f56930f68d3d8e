"""The README's main job, `python train.py` with no arguments, must really denoise: >= 8 dB test gain.

Its wall time (at most 3 minutes on 2 cores; about one here) is measured by bench/quickstart.py and reported in
the README, not asserted here. The recipe is a fixed 1,000 steps, so the scores do not depend on the machine's
speed (its CPU's floating-point kernels move them by a few hundredths of a dB: 30.67 and 30.84 dB on two machines).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import read_results, run_cli


@pytest.mark.slow
def test_quickstart_gains_at_least_8_db(tmp_path: Path) -> None:
    run = tmp_path / "quickstart"
    result = run_cli("train.py", run_dir=run)
    assert result.returncode == 0, result.stderr[-3000:]
    results = read_results(run)
    gain = results["test/psnr"] - results["test/psnr_noisy"]
    assert gain >= 8.0, results
    assert results["test/ssim"] > results["test/ssim_noisy"] + 0.3
    assert results["global_step"] == 1000 and results["world_size"] == 1
    assert "REDNet" in result.stdout and "noisy input" in result.stdout  # the printed table
    assert "wandb sync" in result.stdout + result.stderr  # offline W&B says how to upload
    assert list((run / "wandb").glob("offline-run-*/run-*.wandb"))
