"""FFDNet: a plain CNN on a half-resolution, 4x deeper image, with the noise level as an input map.

Zhang, Zuo, Zhang, "FFDNet: Toward a Fast and Flexible Solution for CNN-Based Image Denoising", TIP 2018
(arXiv 1710.04026).

The image is split into its four 2x2 sub-images (PixelUnshuffle(2): 4C channels at half the size), the noise
level map (at that half size) is appended, then ``layers`` 3x3 convs (conv+ReLU, ``layers - 2`` of
conv+BN+ReLU in the paper, without BN in the authors' later code and here), the last giving 4C channels that
PixelShuffle(2) puts back at full size: the clean image (no global residual). The input is padded to even
size (replicating the edge, as the authors' code) and cropped back. Gray: 15 layers of 64 channels; colour:
12 layers of 96.

Parameters (the authors' configurations, the same count as their code): 485,316 gray, 852,108 colour.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from denoise.models.noise_map import noise_level_map
from denoise.models.padding import crop_to, pad_to_multiple


class FFDNet(nn.Module):
    """FFDNet; ``forward(noisy, noise_level)`` with the level on the [0, 1] scale (a number per image or a map).
    ``channels``/``layers`` default to the paper's per colour mode (64/15 gray, 96/12 colour)."""

    takes_noise_level = True

    def __init__(self, in_channels: int = 3, channels: int | None = None, layers: int | None = None) -> None:
        super().__init__()
        gray = in_channels == 1
        channels = channels or (64 if gray else 96)
        layers = layers or (15 if gray else 12)
        if layers < 3:
            raise ValueError(f"model.net.layers={layers}: expected at least 3")
        body: list[nn.Module] = [nn.Conv2d(4 * in_channels + 1, channels, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(layers - 2):
            body += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True)]
        body.append(nn.Conv2d(channels, 4 * in_channels, 3, padding=1))
        self.body = nn.Sequential(*body)

    def forward(self, x: torch.Tensor, noise_level: torch.Tensor | float) -> torch.Tensor:
        level = noise_level_map(noise_level, x)
        padded, size = pad_to_multiple(x, 2, mode="replicate")  # as the authors' code
        level, _ = pad_to_multiple(level, 2, mode="replicate")
        down = F.pixel_unshuffle(padded, 2)
        level = F.avg_pool2d(level, 2)  # the map at the sub-images' resolution (the same value for a constant one)
        return crop_to(F.pixel_shuffle(self.body(torch.cat([down, level], dim=1)), 2), size)
