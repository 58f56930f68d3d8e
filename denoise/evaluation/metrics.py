"""Per-image PSNR and SSIM by the restoration conventions, and the conventions papers differ on.

Images are in [0, 1] (data range 1) and are clamped to it first; PSNR and SSIM are computed per image and
then averaged over images (never over pixels of a whole set). SSIM uses the 11x11 Gaussian window with
sigma 1.5 of Wang et al. 2004, averaged over channels and over the windows inside the image (as the
authors' code and scikit-image do).

Scores are computed in float64 with autocast and TF32 off (:func:`denoise.inference.precision.exact_float`), so they are
the same on a CPU and a GPU and under any training precision: SSIM's ``E[x²] - E[x]²`` cancels badly in
TF32 or bf16 (on an H200: 0.838 instead of 0.862 for DnCNN on Set12 in TF32, about 0.44 at 29.8 dB under bf16).
The Gaussian window is applied as two 11-tap passes (it is separable): in float64 that is 20x faster than
torchmetrics' 121-tap 2-D convolution on a CPU, and the values equal scikit-image's to 1e-12.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from denoise.inference.precision import exact_float

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
    """PSNR in dB of each image of a ``B x C x H x W`` batch (shape ``B``, float64; data range 1). Written out
    rather than torchmetrics', whose ``10 / ln 10`` is a float32 constant (1e-6 dB off in float64)."""
    pred, target = _exact(pred), _exact(target)
    with exact_float(pred.device.type):
        mse = ((pred - target) ** 2).flatten(1).mean(dim=1)
        return -10.0 * torch.log10(mse)


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


# -- the conventions papers score by ------------------------------------------------------------------------
#: the choices of :class:`Convention`, key by key (``metrics.<key>`` in the configs)
CONVENTION_CHOICES = {"color": ("rgb", "y"), "quantize": ("float", "uint8"), "ssim": ("skimage", "matlab")}
#: BT.601 luma of [0, 1] RGB as BasicSR's ``rgb2ycbcr(y_only=True)`` (MATLAB's rgb2ycbcr): Y in [16, 235] / 255
Y_WEIGHTS, Y_OFFSET = (65.481 / 255, 128.553 / 255, 24.966 / 255), 16.0 / 255


@dataclass(frozen=True)
class Convention:
    """How a score is computed, as papers differ on it, and written beside every score so a reader knows:

    * ``color``: ``rgb`` (every channel; default) or ``y``, the BT.601 luma of YCbCr (BasicSR's
      ``test_y_channel``; gray images are scored as they are);
    * ``crop_border``: pixels left out at each edge before scoring (super-resolution papers crop the scale);
    * ``quantize``: ``float`` scores the output as computed; ``uint8`` rounds it (and the target) to 8 bits
      first, what a saved PNG or a SIDD submission holds and what BasicSR's uint8 images give;
    * ``ssim``: ``skimage`` (Wang et al.'s 11x11 Gaussian window, the windows inside the image, each channel
      on its own: scikit-image and BasicSR) or ``matlab`` (MATLAB's ``ssim`` as the SIDD evaluation scripts call
      it: Gaussian sigma 1.5 over an 11-tap support on every axis with replicated borders, an RGB image
      filtered as a 3-D volume, the map averaged over every position).
    """

    color: str = "rgb"
    crop_border: int = 0
    quantize: str = "float"
    ssim: str = "skimage"

    def __post_init__(self) -> None:
        for key, choices in CONVENTION_CHOICES.items():
            if getattr(self, key) not in choices:
                raise ValueError(f"metrics.{key}={getattr(self, key)!r} is unknown; expected one of {list(choices)}")
        if not isinstance(self.crop_border, int) or self.crop_border < 0:
            raise ValueError(f"metrics.crop_border={self.crop_border!r}: expected a whole number >= 0")

    @classmethod
    def of(cls, spec: Mapping[str, Any] | Convention | None) -> Convention:
        """A convention from its config mapping (missing keys: the defaults)."""
        if isinstance(spec, Convention):
            return spec
        return cls(**{k: (int(v) if k == "crop_border" else str(v)) for k, v in dict(spec or {}).items()})

    def describe(self, channels: int | None = None) -> str:
        """One line for table titles, e.g. ``RGB, float, SSIM as scikit-image`` (``gray`` for 1-channel images,
        where neither RGB nor Y applies)."""
        parts = ["gray" if channels == 1 else "Y (BT.601)" if self.color == "y" else "RGB"]
        parts.append("rounded to 8 bits" if self.quantize == "uint8" else "float")
        if self.crop_border:
            parts.append(f"{self.crop_border} px border cropped")
        parts.append("SSIM as MATLAB" if self.ssim == "matlab" else "SSIM as scikit-image")
        return ", ".join(parts)

    def prepare(self, image: torch.Tensor) -> torch.Tensor:
        """``image`` (``B x C x H x W``) as this convention scores it: float64, quantized, luma, cropped."""
        image = _exact(image)
        if self.quantize == "uint8":
            image = torch.round(image * 255.0) / 255.0
        if self.color == "y" and image.shape[1] == 3:
            weights = torch.tensor(Y_WEIGHTS, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
            image = (image * weights).sum(dim=1, keepdim=True) + Y_OFFSET
        border = self.crop_border
        return image[..., border:-border, border:-border] if border else image


def matlab_ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SSIM of each image as MATLAB's ``ssim(A, ref)`` computes it for images in [0, 1]: a Gaussian of sigma 1.5
    with an 11-tap support on every axis (an RGB image is a 3-D volume, its channels filtered together), borders
    replicated, the map averaged over every position (shape ``B``, float64)."""
    pred, target = _exact(pred), _exact(target)
    window = _gaussian_window(pred.device)
    with exact_float(pred.device.type):
        x, y = pred[:, None], target[:, None]  # B x 1 x C x H x W: channels as the volume's depth
        stats = torch.cat((x, y, x * x, y * y, x * y))
        stats = F.pad(stats, (SSIM_RADIUS,) * 6, mode="replicate")
        volume = pred.shape[1] > 1
        stats = F.conv3d(stats, window.view(1, 1, 1, 1, -1))
        stats = F.conv3d(stats, window.view(1, 1, 1, -1, 1))
        stats = F.conv3d(stats, window.view(1, 1, -1, 1, 1)) if volume else stats[:, :, SSIM_RADIUS:-SSIM_RADIUS]
        mu_x, mu_y, xx, yy, xy = stats.chunk(5)
        var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
        ssim_map = ((2 * mu_x * mu_y + SSIM_C1) * (2 * cov + SSIM_C2)) / (
            (mu_x**2 + mu_y**2 + SSIM_C1) * (var_x + var_y + SSIM_C2)
        )
        return ssim_map.reshape(pred.shape[0], -1).mean(dim=1)


def scores(pred: torch.Tensor, target: torch.Tensor, convention: Convention | None = None) -> dict[str, torch.Tensor]:
    """PSNR and SSIM of each image of a batch by ``convention`` (the default: RGB, float, scikit-image SSIM)."""
    convention = convention or Convention()
    pred, target = convention.prepare(pred), convention.prepare(target)
    structural = matlab_ssim if convention.ssim == "matlab" else ssim
    return {"psnr": psnr(pred, target), "ssim": structural(pred, target)}


def image_metrics(
    denoised: torch.Tensor, noisy: torch.Tensor, clean: torch.Tensor, convention: Convention | None = None
) -> dict[str, torch.Tensor]:
    """PSNR/SSIM of the output and of the noisy input, so every result shows the gain."""
    output, noisy_input = scores(denoised, clean, convention), scores(noisy, clean, convention)
    return {
        "psnr": output["psnr"],
        "ssim": output["ssim"],
        "psnr_noisy": noisy_input["psnr"],
        "ssim_noisy": noisy_input["ssim"],
    }
