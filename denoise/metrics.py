"""Per-image PSNR and SSIM by the restoration conventions.

Images are in [0, 1] (data range 1) and are clamped to it first; PSNR and SSIM are computed per image and
then averaged over images (never over pixels of a whole set). SSIM uses the 11x11 Gaussian window with
sigma 1.5 of Wang et al. 2004, averaged over channels and over the windows inside the image (as the
authors' code and scikit-image do).

Scores are computed in float64 with autocast and TF32 off (:func:`denoise.precision.exact_float`), so they are
the same on a CPU and a GPU and under any training precision: SSIM's ``E[x²] - E[x]²`` cancels badly in
TF32 or bf16 (on an H200: 0.838 instead of 0.862 for DnCNN on Set12 in TF32, about 0.44 at 29.8 dB under bf16).
The Gaussian window is applied as two 11-tap passes (it is separable): in float64 that is 20x faster than
torchmetrics' 121-tap 2-D convolution on a CPU, and the values equal scikit-image's to 1e-12.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchmetrics.functional.image import peak_signal_noise_ratio

from denoise.precision import exact_float

#: Wang et al.'s window: a Gaussian of sigma 1.5, 11 taps (scikit-image: truncate 3.5 -> radius 5)
SSIM_SIGMA, SSIM_RADIUS = 1.5, 5
#: the stabilizers of Wang et al. for data range 1: (K1 L)², (K2 L)²
SSIM_C1, SSIM_C2 = 0.01**2, 0.03**2


def _exact(image: torch.Tensor) -> torch.Tensor:
    """float64 in [0, 1] (Apple's MPS has no float64: scored on the CPU there)."""
    if image.device.type == "mps":
        image = image.cpu()
    return image.detach().to(torch.float64).clamp(0, 1)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of each image of a ``B x C x H x W`` batch (shape ``B``, float64)."""
    pred, target = _exact(pred), _exact(target)
    with exact_float(pred.device.type):
        return peak_signal_noise_ratio(pred, target, data_range=1.0, reduction="none", dim=(1, 2, 3))


def _gaussian_window(device: torch.device) -> torch.Tensor:
    offsets = torch.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=torch.float64, device=device)
    window = torch.exp(-(offsets**2) / (2 * SSIM_SIGMA**2))
    return window / window.sum()


def _blur(maps: torch.Tensor, window: torch.Tensor, valid: bool) -> torch.Tensor:
    """The Gaussian-weighted local mean of every ``N x 1 x H x W`` map: only the positions whose window lies
    inside the image (``valid``), or every position of the reflect-padded image (images under 11 pixels)."""
    if not valid:
        mode = "reflect" if min(maps.shape[-2:]) > SSIM_RADIUS else "replicate"
        maps = F.pad(maps, (SSIM_RADIUS,) * 4, mode=mode)
    maps = F.conv2d(maps, window.view(1, 1, -1, 1))
    return F.conv2d(maps, window.view(1, 1, 1, -1))


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SSIM of each image of a ``B x C x H x W`` batch (shape ``B``, float64), equal to
    ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    data_range=1)`` averaged over channels: the mean over the windows that lie inside the image."""
    pred, target = _exact(pred), _exact(target)
    batch, (height, width) = pred.shape[0], pred.shape[-2:]
    with exact_float(pred.device.type):
        x, y = pred.reshape(-1, 1, height, width), target.reshape(-1, 1, height, width)
        stats = _blur(torch.cat((x, y, x * x, y * y, x * y)), _gaussian_window(pred.device), min(height, width) > 10)
        mu_x, mu_y, xx, yy, xy = stats.chunk(5)
        var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
        ssim_map = ((2 * mu_x * mu_y + SSIM_C1) * (2 * cov + SSIM_C2)) / (
            (mu_x**2 + mu_y**2 + SSIM_C1) * (var_x + var_y + SSIM_C2)
        )
        return ssim_map.reshape(batch, -1).mean(dim=1)


def image_metrics(denoised: torch.Tensor, noisy: torch.Tensor, clean: torch.Tensor) -> dict[str, torch.Tensor]:
    """PSNR/SSIM of the output and of the noisy input, so every result shows the gain."""
    return {
        "psnr": psnr(denoised, clean),
        "ssim": ssim(denoised, clean),
        "psnr_noisy": psnr(noisy, clean),
        "ssim_noisy": ssim(noisy, clean),
    }
