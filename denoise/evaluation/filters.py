"""Classical denoising filters, the baselines every network is compared with.

Every filter has one signature, ``filter(noisy, sigma=None, **params) -> denoised``: ``noisy`` is an
``H x W x C`` float32 array in [0, 1] (C = 1 or 3) and the result has the same shape. ``sigma`` is the
noise standard deviation on the [0, 1] scale. Filters that need it (Wiener, bilateral, non-local means,
BM3D) estimate it from the image (:func:`estimate_noise_sigma`, wavelet MAD) when it is None; the others
ignore it. ``evaluate.py`` passes the data's own level when the noise is synthetic Gaussian of a fixed
sigma, and None for real or signal-dependent noise.

The implementations are OpenCV's, kornia's, scikit-image's and the ``bm3d`` package's; only the adaptive
median and the adaptive (Lee) Wiener filter, which none of them ships, are written here, from their
textbook definitions.
"""

from __future__ import annotations

import cv2
import kornia
import numpy as np
import torch
import torch.nn.functional as F
from skimage.restoration import denoise_nl_means

from denoise.config.resolvers import require_extra
from denoise.data.io import array2tensor, tensor2single
from denoise.data.noise_estimate import wavelet_sigma

#: the filters ``filters=all`` runs, in this order (each has ``conf/filter/<name>.yaml``)
FILTER_NAMES = ("mean", "gaussian", "median", "adaptive_median", "wiener", "bilateral", "nlm", "bm3d")


def _check(noisy: np.ndarray) -> np.ndarray:
    if noisy.ndim != 3 or noisy.shape[2] not in (1, 3):
        raise ValueError(f"a filter takes an H x W x C image with C = 1 or 3, got shape {noisy.shape}")
    return np.ascontiguousarray(noisy, dtype=np.float32)


def _hwc(image: np.ndarray, channels: int) -> np.ndarray:
    """OpenCV drops a single channel; put it back so every filter returns ``H x W x C``."""
    return image.reshape(image.shape[0], image.shape[1], channels).astype(np.float32, copy=False)


def _odd(size: int, key: str) -> int:
    if size < 1 or size % 2 == 0:
        raise ValueError(f"{key}={size}: expected an odd window size >= 1")
    return int(size)


def estimate_noise_sigma(noisy: np.ndarray) -> float:
    """Noise standard deviation of an image ([0, 1] scale): :func:`denoise.data.noise_estimate.wavelet_sigma`."""
    return wavelet_sigma(_check(noisy))


def _sigma(noisy: np.ndarray, sigma: float | None) -> float:
    value = estimate_noise_sigma(noisy) if sigma is None else float(sigma)
    return max(value, 1e-6)


def mean(noisy: np.ndarray, sigma: float | None = None, size: int = 3) -> np.ndarray:
    """Box filter: the average of a ``size x size`` window (OpenCV, reflected borders)."""
    noisy = _check(noisy)
    return _hwc(cv2.blur(noisy, (_odd(size, "filter.mean.size"),) * 2), noisy.shape[2])


def gaussian(noisy: np.ndarray, sigma: float | None = None, blur_sigma: float = 1.0) -> np.ndarray:
    """Gaussian blur of standard deviation ``blur_sigma`` pixels (OpenCV; window 2*ceil(3*sigma)+1)."""
    noisy = _check(noisy)
    if blur_sigma <= 0:
        raise ValueError(f"filter.gaussian.blur_sigma={blur_sigma}: expected a positive number of pixels")
    return _hwc(cv2.GaussianBlur(noisy, (0, 0), sigmaX=blur_sigma, borderType=cv2.BORDER_REFLECT_101), noisy.shape[2])


def median(noisy: np.ndarray, sigma: float | None = None, size: int = 3) -> np.ndarray:
    """Median of a ``size x size`` window per channel (kornia, reflected borders)."""
    noisy = _check(noisy)
    size = _odd(size, "filter.median.size")
    return tensor2single(kornia.filters.median_blur(array2tensor(noisy)[None], (size, size), border_type="reflect")[0])


def _window_stats(x: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Minimum, median and maximum over each pixel's ``size x size`` window (reflected borders)."""
    padded = F.pad(x, (size // 2,) * 4, mode="reflect")
    maximum = F.max_pool2d(padded, size, stride=1)
    minimum = -F.max_pool2d(-padded, size, stride=1)
    med = kornia.filters.median_blur(x, (size, size), border_type="reflect")
    return minimum, med, maximum


def adaptive_median(noisy: np.ndarray, sigma: float | None = None, max_size: int = 7) -> np.ndarray:
    """The adaptive median filter (Gonzalez & Woods, Digital Image Processing, 3.5).

    At each pixel the window grows from 3x3 until its median is not an extreme of the window (stage A),
    or up to ``max_size``, where the median is the answer. With a usable median the pixel keeps its own
    value unless it is itself the window's minimum or maximum (stage B): outliers are replaced and
    everything else is left alone, so edges survive that a plain median would round off.
    """
    noisy = _check(noisy)
    max_size = _odd(max_size, "filter.adaptive_median.max_size")
    if max_size < 3:
        raise ValueError(f"filter.adaptive_median.max_size={max_size}: expected at least 3")
    x = array2tensor(noisy)[None]
    out = x.clone()
    undecided = torch.ones_like(x, dtype=torch.bool)
    med = x
    for size in range(3, max_size + 1, 2):
        minimum, med, maximum = _window_stats(x, size)
        usable = undecided & (minimum < med) & (med < maximum)
        is_extreme = (x <= minimum) | (x >= maximum)
        out = torch.where(usable & is_extreme, med, out)
        undecided &= ~usable
    out = torch.where(undecided, med, out)  # no usable median at any size: the largest window's median
    return tensor2single(out[0])


def wiener(noisy: np.ndarray, sigma: float | None = None, size: int = 5) -> np.ndarray:
    """The adaptive (local-statistics) Wiener filter of Lee 1980, as MATLAB's ``wiener2``.

    ``out = mu + max(var - noise_var, 0) / max(var, noise_var) * (x - mu)`` with the local mean ``mu`` and
    variance ``var`` of a ``size x size`` window: flat regions are averaged, edges (high local variance)
    kept. ``noise_var`` is ``sigma**2``; without a sigma, the mean local variance (as ``wiener2`` does).
    """
    noisy = _check(noisy)
    window = (_odd(size, "filter.wiener.size"),) * 2
    x = noisy.astype(np.float64)
    local_mean = _hwc(cv2.blur(x, window), x.shape[2]).astype(np.float64)
    local_var = np.maximum(_hwc(cv2.blur(x * x, window), x.shape[2]).astype(np.float64) - local_mean**2, 0.0)
    noise_var = float(sigma) ** 2 if sigma is not None else float(local_var.mean())
    gain = np.maximum(local_var - noise_var, 0.0) / np.maximum(local_var, max(noise_var, 1e-12))
    return (local_mean + gain * (x - local_mean)).astype(np.float32)


def bilateral(
    noisy: np.ndarray, sigma: float | None = None, color_factor: float = 4.0, spatial_sigma: float = 2.0
) -> np.ndarray:
    """Edge-preserving bilateral filter (OpenCV): range kernel ``color_factor * sigma``, spatial kernel in pixels."""
    noisy = _check(noisy)
    sigma_color = color_factor * _sigma(noisy, sigma)
    image = noisy[..., 0] if noisy.shape[2] == 1 else noisy
    out = cv2.bilateralFilter(image, d=-1, sigmaColor=sigma_color, sigmaSpace=spatial_sigma)
    return _hwc(out, noisy.shape[2])


def nlm(
    noisy: np.ndarray,
    sigma: float | None = None,
    h_factor: float = 0.7,
    patch_size: int = 5,
    patch_distance: int = 6,
) -> np.ndarray:
    """Non-local means (Buades et al. 2005; scikit-image's fast mode): ``h = h_factor * sigma``."""
    noisy = _check(noisy)
    level = _sigma(noisy, sigma)
    out = denoise_nl_means(
        noisy,
        h=h_factor * level,
        sigma=level,
        patch_size=patch_size,
        patch_distance=patch_distance,
        fast_mode=True,
        channel_axis=-1,
    )
    return _hwc(out, noisy.shape[2])


def bm3d(noisy: np.ndarray, sigma: float | None = None, profile: str = "np") -> np.ndarray:
    """BM3D (Dabov et al. 2007), the ``bm3d`` package of its authors' group; colour through ``bm3d_rgb``. The
    package is free for non-commercial use only: an extra (``pip install 'denoise[bm3d]'``), imported here."""
    import importlib

    bm3d_package = importlib.import_module(require_extra("bm3d", "filters=[bm3d]"))
    noisy = _check(noisy)
    level = _sigma(noisy, sigma)
    if noisy.shape[2] == 1:
        out = bm3d_package.bm3d(noisy[..., 0], sigma_psd=level, profile=profile)
    else:
        out = bm3d_package.bm3d_rgb(noisy, sigma_psd=level, profile=profile)
    return _hwc(np.asarray(out), noisy.shape[2])
