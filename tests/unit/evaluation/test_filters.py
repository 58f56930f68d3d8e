"""Classical filters on real photos, the hand-written ones against their definitions, and the metrics against
scikit-image's reference implementations."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from denoise.evaluation import filters
from denoise.evaluation.metrics import psnr, ssim
from tests.helpers import SHARED_DATA

#: the least PSNR gain (dB) each filter must give at sigma 25 on both photos; measured gains are about 1 dB higher
#: (camera / astronaut crops: mean 4.5/6.4, gaussian 5.0/7.0, median 4.4/5.5, adaptive median 2.1/2.5,
#: wiener 5.6/6.3, bilateral 5.7/7.9, nlm 7.5/8.3, bm3d 8.5/10.8)
MIN_GAIN = {
    "mean": 3.5,
    "gaussian": 4.0,
    "median": 3.4,
    "adaptive_median": 1.2,
    "wiener": 4.6,
    "bilateral": 4.7,
    "nlm": 6.5,
    "bm3d": 7.5,
}


def photo(name: str) -> np.ndarray:
    """A 160x160 crop of a scikit-image photo (gray camera, RGB astronaut) as float32 H x W x C."""
    if name == "camera":
        return (data.camera()[96:256, 160:320, None] / 255).astype(np.float32)
    return (data.astronaut()[0:160, 140:300] / 255).astype(np.float32)


def noisy_version(clean: np.ndarray, sigma: float = 25, seed: int = 0) -> np.ndarray:
    return (clean + np.random.default_rng(seed).normal(0, sigma / 255, clean.shape)).astype(np.float32)


def gain(clean: np.ndarray, noisy: np.ndarray, denoised: np.ndarray) -> float:
    before = peak_signal_noise_ratio(clean, np.clip(noisy, 0, 1), data_range=1)
    return peak_signal_noise_ratio(clean, np.clip(denoised, 0, 1), data_range=1) - before


@pytest.mark.slow
@pytest.mark.parametrize("image", ["camera", "astronaut"])
@pytest.mark.parametrize("name", filters.FILTER_NAMES)
def test_every_filter_improves_a_real_photo_at_sigma_25(name: str, image: str) -> None:
    clean = photo(image)
    noisy = noisy_version(clean)
    denoised = getattr(filters, name)(noisy, sigma=25 / 255)
    assert denoised.shape == clean.shape and denoised.dtype == np.float32
    assert gain(clean, noisy, denoised) >= MIN_GAIN[name]
    estimated = getattr(filters, name)(noisy)  # no sigma given: estimated from the image
    assert gain(clean, noisy, estimated) >= MIN_GAIN[name] - 0.3


@pytest.mark.slow
def test_bm3d_is_the_strongest_filter_and_sigma_estimation_is_close() -> None:
    clean = photo("astronaut")
    noisy = noisy_version(clean)
    gains = {name: gain(clean, noisy, getattr(filters, name)(noisy, sigma=25 / 255)) for name in filters.FILTER_NAMES}
    assert max(gains, key=gains.get) == "bm3d"
    assert filters.estimate_noise_sigma(noisy) * 255 == pytest.approx(25, rel=0.08)
    assert filters.estimate_noise_sigma(clean) * 255 < 3


def test_adaptive_median_removes_impulse_noise_better_than_a_median() -> None:
    """Its purpose: salt-and-pepper at density 0.3, where a 3x3 median leaves clumps and blurs."""
    clean = photo("camera")
    rng = np.random.default_rng(1)
    noisy = clean.copy()
    hits = rng.random(clean.shape)
    noisy[hits < 0.15], noisy[hits > 0.85] = 0.0, 1.0
    adaptive = gain(clean, noisy, filters.adaptive_median(noisy))
    plain = gain(clean, noisy, filters.median(noisy, size=3))
    assert adaptive > plain + 3.0
    # pixels that are not outliers in any window are left exactly as they were
    untouched = filters.adaptive_median(clean)
    assert np.mean(untouched == clean) > 0.5


def test_wiener_matches_scipy_and_keeps_the_image_without_noise() -> None:
    clean = photo("camera")
    noisy = noisy_version(clean)
    ours = filters.wiener(noisy, sigma=25 / 255, size=5)[..., 0]
    reference = scipy.signal.wiener(noisy[..., 0].astype(np.float64), mysize=5, noise=(25 / 255) ** 2)
    assert np.abs(ours - reference)[2:-2, 2:-2].max() < 1e-5  # scipy zero-pads, so borders differ
    assert np.allclose(filters.wiener(clean, sigma=0.0), clean, atol=1e-6)


def test_filters_reject_bad_shapes_and_windows() -> None:
    with pytest.raises(ValueError, match=r"H x W x C image with C = 1 or 3, got shape \(8, 8\)"):
        filters.mean(np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError, match=r"filter\.median\.size=4: expected an odd window size"):
        filters.median(np.zeros((8, 8, 1), np.float32), size=4)


def real_images() -> list[tuple[str, np.ndarray]]:
    images = [("camera", photo("camera")), ("astronaut", photo("astronaut"))]
    for path in sorted((SHARED_DATA / "kodak24").glob("*.png"))[:1] + sorted((SHARED_DATA / "set12").glob("*.png"))[:1]:
        from denoise.data.io import read_image

        images.append((path.name, read_image(path)))
    return images


@pytest.mark.parametrize(("name", "clean"), real_images(), ids=[n for n, _ in real_images()])
def test_psnr_and_ssim_agree_with_scikit_image(name: str, clean: np.ndarray) -> None:
    """Wang et al. 2004 SSIM (11x11 Gaussian window, sigma 1.5) and PSNR at data range 1, within 1e-3."""
    noisy = np.clip(noisy_version(clean, seed=3), 0, 1)
    denoised = np.clip(filters.gaussian(noisy), 0, 1)
    for image in (noisy, denoised):
        tensor = torch.from_numpy(image).permute(2, 0, 1)[None]
        target = torch.from_numpy(clean).permute(2, 0, 1)[None]
        expected_psnr = peak_signal_noise_ratio(clean.astype(np.float64), image.astype(np.float64), data_range=1)
        expected_ssim = structural_similarity(
            clean.astype(np.float64),
            image.astype(np.float64),
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1,
            channel_axis=2,
        )
        assert float(psnr(tensor, target)[0]) == pytest.approx(expected_psnr, abs=1e-3)
        assert float(ssim(tensor, target)[0]) == pytest.approx(expected_ssim, abs=1e-3)


def test_bm3d_is_an_optional_part(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The bm3d package is free for non-commercial use only, so it is an extra: without it filters=all runs the
    others and says so, and filters=[bm3d] names the pip install (and the licence) before anything runs."""
    from omegaconf import OmegaConf

    from denoise.config import resolvers
    from denoise.tasks.evaluation import filter_names

    cfg = OmegaConf.create({"filters": "all", "filter": {name: {} for name in filters.FILTER_NAMES}})
    assert filter_names(cfg) == list(filters.FILTER_NAMES)  # installed here ([dev])
    real = resolvers.importlib.util.find_spec
    monkeypatch.setattr(resolvers.importlib.util, "find_spec", lambda name: None if name == "bm3d" else real(name))
    assert filter_names(cfg) == [n for n in filters.FILTER_NAMES if n != "bm3d"]
    assert "filters=all without BM3D" in caplog.text and "pip install 'denoise[bm3d]'" in caplog.text
    cfg.filters = ["nlm", "bm3d"]
    with pytest.raises(ValueError, match=r"needs the bm3d package, .* non-commercial use only\): pip install"):
        filter_names(cfg)
    with pytest.raises(ImportError, match=r"pip install 'denoise\[bm3d\]'"):
        filters.bm3d(np.zeros((8, 8, 1), np.float32), 0.1)
