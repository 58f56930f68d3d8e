"""A convolutional autoencoder: the seed project's baseline, small and fast.

A strided-conv encoder (3x3 conv, then two stride-2 3x3 convs: 32 -> 64 -> 128 channels at 1/4 size), a
bottleneck of two 3x3 convs at 1/4 size, and a transposed-conv decoder (two stride-2 4x4 transposed convs
back to full size, then a 3x3 conv to the image). ReLU between layers. It maps noisy -> clean directly,
with no skip connections (``residual=True`` adds the input back instead). Inputs are padded to a
multiple of 4 and cropped back. Parameters for RGB, 32 channels: 553,219.
"""

from __future__ import annotations

import torch
from torch import nn

from denoise.models.padding import crop_to, pad_to_multiple


class ConvAutoencoder(nn.Module):
    size_multiple = 4

    def __init__(self, in_channels: int = 3, channels: int = 32, residual: bool = False) -> None:
        super().__init__()
        c1, c2, c3 = channels, 2 * channels, 4 * channels
        relu = nn.ReLU(inplace=True)
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1), relu,
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), relu,
            nn.Conv2d(c2, c3, 3, stride=2, padding=1), relu,
        )  # fmt: skip
        self.bottleneck = nn.Sequential(
            nn.Conv2d(c3, c3, 3, padding=1), relu,
            nn.Conv2d(c3, c3, 3, padding=1), relu,
        )  # fmt: skip
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(c3, c2, 4, stride=2, padding=1), relu,
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1), relu,
            nn.Conv2d(c1, in_channels, 3, padding=1),
        )  # fmt: skip
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded, size = pad_to_multiple(x, self.size_multiple)
        out = crop_to(self.decoder(self.bottleneck(self.encoder(padded))), size)
        return x + out if self.residual else out
