"""Each training objective, run briefly through train.py's task: every one raises PSNR on held-out images by a
real margin, and a folder of noisy images alone trains and is scored without ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from skimage import data as skdata

from denoise.data.io import write_image
from denoise.tasks import train
from tests.helpers import SHARED_DATA, compose_cfg, read_results

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


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="the real SIDD pairs are not beside this checkout")
def test_apbsn_removes_real_camera_noise_where_noise2void_cannot(tmp_path: Path) -> None:
    """The 12 real SIDD sRGB pairs (spatially correlated noise), the same 300 steps, scored against the clean
    images: AP-BSN (experiment=apbsn_cpu, a step count instead of its clock) gains over 8 dB, Noise2Void little
    (its hidden pixel's neighbours carry the pixel's noise)."""
    samples = SHARED_DATA / "sidd_samples"
    data = ["data=paired", f"data.noisy_dir={samples / 'noisy'}", f"data.clean_dir={samples / 'clean'}",
            "data.datasets.paired.val_fraction=0.1", "data.datasets.paired.test_fraction=0.1",
            "data.num_workers=0", "logger=none", "~callbacks.rich_progress_bar", "~callbacks.model_summary",
            "trainer.max_epochs=1", "data.samples_per_epoch=2400", "data.eval_crop=256"]  # fmt: skip
    gains = {}
    for objective, extra in (
        ("apbsn", ["experiment=apbsn_cpu", "trainer.max_time=null"]),
        ("noise2void", ["objective=noise2void", "data.patch_size=48"]),
    ):
        run = tmp_path / objective
        train(compose_cfg("train", [*extra, *data], run))
        results = read_results(run)
        gains[objective] = results["test/psnr"] - results["test/psnr_noisy"]
        assert results["global_step"] == 300 and results["objective"].startswith(objective)
    # measured here: apbsn +11.97 dB (+4.18 after 200 steps: it learns the scene's structure suddenly), noise2void
    # +1.09
    assert gains["apbsn"] > 8.0, gains
    assert gains["apbsn"] > gains["noise2void"] + 6.0, gains
