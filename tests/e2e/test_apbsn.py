"""AP-BSN on real camera noise through train.py's task: the suite's longest test, in a file of its own so that
pytest-xdist (--dist loadfile) runs it beside the other self-supervised tests rather than after them."""

from __future__ import annotations

from pathlib import Path

import pytest

from denoise.tasks import train
from tests.helpers import SHARED_DATA, compose_cfg, read_results


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
