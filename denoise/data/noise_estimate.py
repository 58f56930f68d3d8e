"""The noise estimators, one home for all of them, each named by its method and its scale:

* :func:`wavelet_sigma`: Donoho's wavelet MAD on one ``H x W x C`` float image (scikit-image's
  ``estimate_sigma``), [0, 1] scale: what the classical filters are given when the level is unknown, and the
  no-ground-truth score (``val/noise_in``, ``val/noise_out``, 0-255 after :func:`batch_wavelet_sigma`).
* :func:`haar_sigma`: the same estimate on a ``B x C x H x W`` batch on its device (finest diagonal Haar
  coefficients), [0, 1] scale: the level map FFDNet and DRUNet get when the data has no known level.
* :func:`flat_region_sigma`: Immerkaer's residual over the flattest 16x16 blocks of an 8/16-bit image, 0-255
  scale: whether a folder of "noisy" images is noisy at all (whole-image estimates read texture as noise).
"""

from __future__ import annotations

import numpy as np
import torch


def wavelet_sigma(image: np.ndarray) -> float:
    """The noise standard deviation of a float ``H x W x C`` image in [0, 1], by the wavelet median-absolute-
    deviation estimate (Donoho; scikit-image), averaged over the channels; [0, 1] scale."""
    from skimage.restoration import estimate_sigma

    return float(estimate_sigma(image, channel_axis=-1, average_sigmas=True))


def batch_wavelet_sigma(images: torch.Tensor) -> torch.Tensor:
    """:func:`wavelet_sigma` of every image of a float ``B x C x H x W`` batch (clamped to [0, 1] as the scores
    are), on the 0-255 scale (float64)."""
    arrays = images.detach().cpu().double().clamp(0, 1).permute(0, 2, 3, 1).numpy()
    return torch.tensor([255.0 * wavelet_sigma(a) for a in arrays], dtype=torch.float64, device=images.device)


def haar_sigma(images: torch.Tensor) -> torch.Tensor:
    """The noise standard deviation of each image of a ``B x C x H x W`` batch on the [0, 1] scale, estimated
    without ground truth on the images' device: Donoho's wavelet MAD, the median absolute finest diagonal Haar
    coefficient over 0.6745, averaged over the channels (scikit-image's ``estimate_sigma`` does the same with
    Daubechies-2; they agree within about 1% on photos). Returns ``B``."""
    height, width = images.shape[-2] // 2 * 2, images.shape[-1] // 2 * 2
    if height == 0 or width == 0:
        raise ValueError(f"cannot estimate the noise level of a {tuple(images.shape[-2:])} image")
    x = images[..., :height, :width].float()
    diagonal = (x[..., 0::2, 0::2] - x[..., 0::2, 1::2] - x[..., 1::2, 0::2] + x[..., 1::2, 1::2]) / 2
    per_channel = diagonal.flatten(2).abs().quantile(0.5, dim=-1) / 0.6745
    return per_channel.mean(dim=1)


#: the residual of Immerkaer's noise estimator ("Fast noise variance estimation", 1996): zero on any plane
_LAPLACE_DIFFERENCE = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
#: blocks the image is cut into; the estimate is a low quantile of theirs: the flattest regions show the noise
#: alone, where edges and texture (grass, fur) make a whole-image estimate of a clean photo several units high
FLAT_BLOCK, FLAT_QUANTILE = 16, 0.1


def flat_region_sigma(image: np.ndarray) -> float:
    """The noise standard deviation of an ``H x W x C`` uint8/uint16 image on the 0-255 scale, measured in its
    flattest regions: Immerkaer's residual averaged over 16x16 blocks, the 10th percentile of the blocks (blocks
    with clipped pixels left out, where noise is cut off), over the central 512x512 region at most.

    Measured on clean test sets (folder medians): Set12 1.47, BSD68 0.47, CBSD68 0.59, Kodak24 1.37, McMaster
    1.05, SIDD's clean references 0.52; on noisy ones: SIDD's real noisy photos 6.14, Gaussian noise of sigma 3
    2.96 and sigma 5 4.76 (``python bench/noise_estimate.py``). A whole-image wavelet estimate put every clean set
    above 1.7, and the old threshold of 1.0 let them all through."""
    from scipy.signal import convolve2d

    height, width = image.shape[:2]
    top, left = max(0, (height - 512) // 2), max(0, (width - 512) // 2)
    region = image[top : top + 512, left : left + 512].astype(np.float64)
    region *= 255.0 / (255.0 if image.dtype == np.uint8 else 65535.0)
    estimates = []
    for channel in range(region.shape[2]):
        plane = region[..., channel]
        residual = np.abs(convolve2d(plane, _LAPLACE_DIFFERENCE, mode="valid"))
        rows, cols = residual.shape[0] // FLAT_BLOCK * FLAT_BLOCK, residual.shape[1] // FLAT_BLOCK * FLAT_BLOCK
        if rows == 0 or cols == 0:  # smaller than a block: the whole residual
            estimates.append(float(residual.mean()) * np.sqrt(np.pi / 2) / 6)
            continue
        shape = (rows // FLAT_BLOCK, FLAT_BLOCK, cols // FLAT_BLOCK, FLAT_BLOCK)
        blocks = residual[:rows, :cols].reshape(shape).mean(axis=(1, 3)) * np.sqrt(np.pi / 2) / 6
        pixels = plane[1 : 1 + rows, 1 : 1 + cols].reshape(shape)
        clipped = ((pixels <= 0.5) | (pixels >= 254.5)).mean(axis=(1, 3))
        usable = blocks[clipped < 0.05]
        estimates.append(float(np.quantile(usable if usable.size else blocks, FLAT_QUANTILE)))
    return float(np.mean(estimates))
