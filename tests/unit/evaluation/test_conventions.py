"""Scores by the conventions papers use, each checked against a computation written independently here:
scikit-image on converted arrays, BasicSR's published formulas, and MATLAB's ssim re-derived with scipy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage
import skimage.data
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from denoise.evaluation.metrics import Convention, scores


def _pair(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    clean = skimage.data.astronaut()[100:180, 140:236].astype(np.float64) / 255.0
    noisy = np.clip(clean + 0.08 * np.random.default_rng(seed).standard_normal(clean.shape), 0, 1)
    return noisy, clean


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None]


def _luma(image: np.ndarray) -> np.ndarray:
    """BasicSR's ``bgr2ycbcr(y_only=True)`` on an RGB [0, 1] image, written out: [16, 235] / 255."""
    return (16.0 + image @ np.array([65.481, 128.553, 24.966])) / 255.0


def _skimage_ssim(x: np.ndarray, y: np.ndarray) -> float:
    return structural_similarity(
        x, y, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        channel_axis=2 if x.ndim == 3 else None,
    )  # fmt: skip


def _matlab_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """MATLAB's ssim(A, ref) for single images in [0, 1]: imgaussfilt(3) with sigma 1.5, an 11-tap support
    (2 * ceil(3 * 1.5) + 1) and replicated borders, over the whole array (an RGB image as a volume), then the
    mean of the map. scipy's 'nearest' mode replicates; truncate 10/3 gives its radius of 5."""

    def blur(a: np.ndarray) -> np.ndarray:
        return scipy.ndimage.gaussian_filter(a, sigma=1.5, mode="nearest", truncate=10 / 3)

    c1, c2 = 0.01**2, 0.03**2
    mu_x, mu_y = blur(x), blur(y)
    var_x, var_y, cov = blur(x * x) - mu_x**2, blur(y * y) - mu_y**2, blur(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(ssim_map.mean())


def test_the_default_is_rgb_float_and_scikit_image() -> None:
    noisy, clean = _pair()
    got = scores(_tensor(noisy), _tensor(clean))
    assert got["psnr"].item() == pytest.approx(peak_signal_noise_ratio(clean, noisy, data_range=1.0), abs=1e-9)
    assert got["ssim"].item() == pytest.approx(_skimage_ssim(noisy, clean), abs=1e-9)
    assert Convention().describe() == "RGB, float, SSIM as scikit-image"


def test_y_channel_crop_and_rounding_as_basicsr_computes_them() -> None:
    """BasicSR's calculate_psnr/ssim(test_y_channel=True, crop_border=4) on uint8 images, re-derived."""
    noisy, clean = _pair(1)
    convention = Convention(color="y", crop_border=4, quantize="uint8")
    got = scores(_tensor(noisy), _tensor(clean), convention)
    rounded = [np.round(a * 255.0) / 255.0 for a in (noisy, clean)]
    y_noisy, y_clean = (_luma(a)[4:-4, 4:-4] for a in rounded)
    assert got["psnr"].item() == pytest.approx(peak_signal_noise_ratio(y_clean, y_noisy, data_range=1.0), abs=1e-9)
    assert got["ssim"].item() == pytest.approx(_skimage_ssim(y_noisy, y_clean), abs=1e-9)
    plain = scores(_tensor(noisy), _tensor(clean))
    assert abs(got["psnr"].item() - plain["psnr"].item()) > 0.1  # the convention changes the number
    assert convention.describe() == "Y (BT.601), rounded to 8 bits, 4 px border cropped, SSIM as scikit-image"


def test_gray_images_are_scored_as_they_are_under_y() -> None:
    noisy, clean = (a.mean(axis=2, keepdims=True) for a in _pair(2))
    y = scores(_tensor(noisy), _tensor(clean), Convention(color="y"))
    rgb = scores(_tensor(noisy), _tensor(clean))
    assert y["psnr"].item() == rgb["psnr"].item() and y["ssim"].item() == rgb["ssim"].item()


@pytest.mark.parametrize("channels", [1, 3])
def test_matlab_ssim_as_the_sidd_scripts_call_it(channels: int) -> None:
    noisy, clean = _pair(3)
    if channels == 1:
        noisy, clean = noisy[..., :1], clean[..., :1]
    got = scores(_tensor(noisy), _tensor(clean), Convention(ssim="matlab"))["ssim"].item()
    expected = _matlab_ssim(noisy[..., 0] if channels == 1 else noisy, clean[..., 0] if channels == 1 else clean)
    assert got == pytest.approx(expected, abs=1e-9)
    assert abs(got - _skimage_ssim(noisy, clean)) > 1e-3  # a different convention, a different number


def test_unknown_conventions_name_their_key() -> None:
    with pytest.raises(ValueError, match=r"metrics\.color='ycbcr' is unknown; expected one of \['rgb', 'y'\]"):
        Convention.of({"color": "ycbcr"})
    with pytest.raises(ValueError, match=r"metrics\.crop_border=-1"):
        Convention.of({"crop_border": -1})


def test_results_files_say_which_convention(tmp_path: Path) -> None:
    from denoise.tasks import evaluate
    from tests.fixtures.small import identity_dncnn, tiny_images
    from tests.helpers import compose_cfg

    data = tiny_images(tmp_path / "images", count=1)
    overrides = [f"data.test_dirs=[{data}]", "model=dncnn", f"ckpt_path={identity_dncnn(tmp_path / 'id.pt')}"]
    overrides += ["metrics.color=y", "metrics.crop_border=2", "grid_images=0"]
    results = evaluate(compose_cfg("evaluate", overrides, tmp_path / "run"))
    assert results["metrics"] == {"color": "y", "crop_border": 2, "quantize": "float", "ssim": "skimage"}
    run = tmp_path / "run"
    assert "Y (BT.601), float, 2 px border cropped" in (run / "results.md").read_text()
    assert "Y (BT.601), float, 2 px border cropped" in (run / "results.csv").read_text().splitlines()[1]
