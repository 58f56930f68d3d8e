"""Each training objective, run briefly through train.py's task: every one raises PSNR on held-out images by a
real margin, and a folder of noisy images alone trains and is scored without ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from skimage import data as skdata

from denoise.data.io import write_image
from denoise.tasks import train
from tests.helpers import compose_cfg, read_results

#: the quickstart's network and data (RED20-16, batch 8 of 48x48, Gaussian sigma 25), 240 steps
SHORT = [
    "data.samples_per_epoch=960",
    "trainer.max_epochs=2",
    "trainer.accelerator=cpu",
    "logger=none",
    "~callbacks.rich_progress_bar",
    "~callbacks.model_summary",
]

#: the gain each objective must reach in those steps (measured here: supervised +6.94 dB, noise2noise +7.62,
#: neighbor2neighbor +3.19 with its regularizer ramping up, noise2void +4.01), with a margin for other CPUs
MIN_GAIN = {"supervised": 6.0, "noise2noise": 6.0, "neighbor2neighbor": 2.5, "noise2void": 3.0}


@pytest.mark.parametrize("objective", list(MIN_GAIN))
def test_each_objective_raises_psnr_on_held_out_images(tmp_path: Path, objective: str) -> None:
    run = tmp_path / "run"
    train(compose_cfg("train", [*SHORT, f"objective={objective}"], run))
    results = read_results(run)
    gain = results["test/psnr"] - results["test/psnr_noisy"]
    assert gain > MIN_GAIN[objective], f"{objective}: {gain:.2f} dB"
    assert results["objective"].startswith(objective) and results["global_step"] == 240


def test_a_noisy_folder_trains_and_is_scored_without_ground_truth(tmp_path: Path) -> None:
    """Noisy shots alone (16-bit PNGs of scikit-image's photos with sigma 25): Neighbor2Neighbor learns from them
    and the held-out images come out with less estimated noise than they went in with."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "shots"
    for name in ("astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "moon", "page", "text", "cat"):
        image = getattr(skdata, name)()
        image = image[..., None].repeat(3, axis=-1) if image.ndim == 2 else image
        noisy = image[:192, :192] / 255 + rng.normal(0, 25 / 255, (*image[:192, :192].shape[:2], 3))
        write_image(folder / f"{name}.png", np.clip(noisy, 0, 1).astype(np.float32), bit_depth=16)
    run = tmp_path / "run"
    overrides = [*SHORT, "data=noisy_folder", f"data.noisy_dir={folder}", "data.patch_size=48",
                 "objective=neighbor2neighbor"]  # fmt: skip
    train(compose_cfg("train", overrides, run))
    results = read_results(run)
    assert results["test/psnr"] is None  # nothing to score against
    assert results["test/noise_in"] == pytest.approx(25, abs=3)  # the estimate finds the noise that was added
    assert results["test/noise_out"] < 0.7 * results["test/noise_in"]  # measured: 14.2 of 24.7 after 240 steps
    assert (run / "checkpoints" / "last.ckpt").is_file()
