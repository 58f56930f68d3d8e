"""Scores that do not depend on the device or the precision: metrics under autocast, networks evaluated in full
precision whatever they trained with, and a bf16 run that scores what fp32 and evaluate.py score."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from denoise.evaluation.metrics import psnr, ssim
from denoise.inference import denoise_image
from denoise.inference.precision import evaluation_precision, exact_float, ieee_float32
from denoise.models.rednet import REDNet
from denoise.tasks import evaluate, train
from tests.helpers import TINY, compose_cfg, read_results


def _camera_pair() -> tuple[torch.Tensor, torch.Tensor]:
    clean = torch.from_numpy(skimage.data.camera().astype(np.float32) / 255.0)[None, None]
    generator = torch.Generator().manual_seed(0)
    return (clean + 25 / 255 * torch.randn(clean.shape, generator=generator)).clamp(0, 1), clean


def _skimage_scores(noisy: torch.Tensor, clean: torch.Tensor) -> tuple[float, float]:
    x, y = noisy[0, 0].double().numpy(), clean[0, 0].double().numpy()
    return (
        peak_signal_noise_ratio(y, x, data_range=1.0),
        structural_similarity(x, y, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False),
    )


@pytest.mark.parametrize("autocast", [None, torch.bfloat16, torch.float16])
def test_metrics_equal_scikit_image_under_any_autocast(autocast: torch.dtype | None) -> None:
    """The issue's CPU reproduction: under bf16 autocast SSIM of the camera at sigma 25 was 0.251 instead of 0.291."""
    noisy, clean = _camera_pair()
    expected_psnr, expected_ssim = _skimage_scores(noisy, clean)
    with torch.autocast("cpu", dtype=autocast or torch.bfloat16, enabled=autocast is not None):
        got_psnr, got_ssim = psnr(noisy, clean).item(), ssim(noisy, clean).item()
    assert expected_ssim == pytest.approx(0.291, abs=0.001)
    assert got_ssim == pytest.approx(expected_ssim, abs=1e-5)
    assert got_psnr == pytest.approx(expected_psnr, abs=1e-5)
    assert psnr(noisy, clean).dtype == ssim(noisy, clean).dtype == torch.float64


def test_ssim_of_colour_and_small_images() -> None:
    """Colour SSIM is the mean over channels (scikit-image's channel_axis); images under the 11x11 window still
    give a value (every position of the reflect-padded image)."""
    clean = torch.from_numpy(skimage.data.astronaut()[:96, :80].astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    noisy = (clean + 0.1 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    expected = structural_similarity(
        noisy[0].permute(1, 2, 0).double().numpy(),
        clean[0].permute(1, 2, 0).double().numpy(),
        channel_axis=2,
        data_range=1.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )
    assert ssim(noisy, clean).item() == pytest.approx(expected, abs=1e-10)
    assert ssim(clean, clean).item() == pytest.approx(1.0, abs=1e-12)
    tiny = torch.rand(1, 1, 8, 9, generator=torch.Generator().manual_seed(2))
    assert ssim(tiny, tiny).item() == pytest.approx(1.0, abs=1e-12)
    assert -1.0 < ssim(tiny, torch.rand(1, 1, 8, 9)).item() < 1.0


def test_ieee_float32_switches_tf32_off_and_restores_it() -> None:
    conv = torch.backends.cudnn.conv
    before = conv.fp32_precision
    conv.fp32_precision = "tf32"
    try:
        with ieee_float32():
            assert conv.fp32_precision == "ieee"
            assert torch.backends.cuda.matmul.fp32_precision == "ieee"
        assert conv.fp32_precision == "tf32"
    finally:
        conv.fp32_precision = before
    with torch.autocast("cpu", dtype=torch.bfloat16), exact_float("cpu"):
        assert not torch.is_autocast_enabled("cpu")


def test_networks_evaluate_in_full_precision_inside_a_bf16_step() -> None:
    """Lightning runs validation inside the training precision's autocast; ``precision=fp32`` (the default) gives
    exactly the output of a plain float32 call there, ``bf16`` a different one (and says so by its option)."""
    torch.manual_seed(0)
    net = REDNet(10, 8, 3).eval()
    x = torch.rand(1, 3, 37, 41)
    with torch.no_grad():
        reference = denoise_image(net, x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            inside_fp32 = denoise_image(net, x)
            inside_bf16 = denoise_image(net, x, precision="bf16")
        with evaluation_precision("bf16", "cpu"):
            assert net.encoder[0](x).dtype == torch.bfloat16  # the convolutions run in bf16
    assert inside_fp32.dtype == torch.float32 and torch.equal(inside_fp32, reference)
    assert inside_bf16.dtype == torch.float32 and (inside_bf16 - reference).abs().max().item() > 1e-4
    with pytest.raises(ValueError, match=r"inference\.precision='fp8' is unknown"):
        denoise_image(net, x, precision="fp8")


@pytest.mark.slow
def test_a_bf16_run_scores_what_fp32_and_evaluate_score(tmp_path: Path) -> None:
    """trainer.precision=bf16-mixed trains in bf16 but validates and tests in float32: the noisy input's SSIM is
    exactly the fp32 run's, and evaluate.py of its checkpoint on the validation image gives its val/ssim."""
    runs = {}
    for precision in ("32-true", "bf16-mixed"):
        run = tmp_path / precision
        train(compose_cfg("train", [*TINY, "logger=csv", f"trainer.precision={precision}"], run))
        runs[precision] = read_results(run)
    fp32, bf16 = runs["32-true"], runs["bf16-mixed"]
    assert bf16["test/ssim_noisy"] == fp32["test/ssim_noisy"]
    assert bf16["test/psnr_noisy"] == fp32["test/psnr_noisy"]
    assert bf16["eval_precision"] == "fp32"
    metrics = (tmp_path / "bf16-mixed" / "csv" / "metrics.csv").read_text().splitlines()
    header = metrics[0].split(",")
    val_rows = [dict(zip(header, line.split(","), strict=True)) for line in metrics[1:]]
    val_rows = [row for row in val_rows if row.get("val/ssim")]
    fp32_metrics = (tmp_path / "32-true" / "csv" / "metrics.csv").read_text().splitlines()
    fp32_rows = [dict(zip(header, line.split(","), strict=True)) for line in fp32_metrics[1:]]
    fp32_rows = [row for row in fp32_rows if row.get("val/ssim")]
    assert val_rows[-1]["val/ssim_noisy"] == fp32_rows[-1]["val/ssim_noisy"]

    coffee = tmp_path / "val_image"
    coffee.mkdir()
    (coffee / "coffee.png").write_bytes((Path(skimage.data.__file__).parent / "coffee.png").read_bytes())
    scored = evaluate(
        compose_cfg("evaluate", [f"ckpt_path={bf16['ckpt_path']}", f"data.test_dirs=[{coffee}]"], tmp_path / "e")
    )
    assert scored["test/ssim"] == pytest.approx(float(val_rows[-1]["val/ssim"]), abs=1e-4)
    assert scored["test/ssim_noisy"] == pytest.approx(float(val_rows[-1]["val/ssim_noisy"]), abs=1e-6)
    assert scored["inference_precision"] == "fp32"
