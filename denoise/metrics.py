"""Per-image PSNR and SSIM by the restoration conventions, computed with torchmetrics.

Images are in [0, 1] (data range 1) and are clamped to it first; PSNR and SSIM are computed per image and
then averaged over images (never over pixels of a whole set). SSIM uses the 11x11 Gaussian window with
sigma 1.5 of Wang et al. 2004, averaged over channels and over the windows inside the image (as the
authors' code and scikit-image do).
"""

from __future__ import annotations

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of each image of a ``B x C x H x W`` batch (shape ``B``)."""
    pred, target = pred.float().clamp(0, 1), target.float().clamp(0, 1)
    return peak_signal_noise_ratio(pred, target, data_range=1.0, reduction="none", dim=(1, 2, 3))


#: half the 11x11 window: the border where the window would reach outside the image
_SSIM_BORDER = 5


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SSIM of each image of a ``B x C x H x W`` batch (shape ``B``).

    torchmetrics computes the SSIM map at every pixel, reflecting the image at its border; Wang et al.'s
    reference code and scikit-image average only the windows that lie inside the image. The map is
    therefore cropped by half the window before averaging, which makes the values match
    ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``.
    """
    pred, target = pred.float().clamp(0, 1), target.float().clamp(0, 1)
    _, ssim_map = structural_similarity_index_measure(
        pred,
        target,
        data_range=1.0,
        gaussian_kernel=True,
        sigma=1.5,
        kernel_size=11,
        reduction="none",
        return_full_image=True,
    )
    border = _SSIM_BORDER
    if min(ssim_map.shape[-2:]) > 2 * border:  # images smaller than the window keep every position
        ssim_map = ssim_map[..., border:-border, border:-border]
    return ssim_map.reshape(pred.shape[0], -1).mean(dim=1)


def image_metrics(denoised: torch.Tensor, noisy: torch.Tensor, clean: torch.Tensor) -> dict[str, torch.Tensor]:
    """PSNR/SSIM of the output and of the noisy input, so every result shows the gain."""
    return {
        "psnr": psnr(denoised, clean),
        "ssim": ssim(denoised, clean),
        "psnr_noisy": psnr(noisy, clean),
        "ssim_noisy": ssim(noisy, clean),
    }
