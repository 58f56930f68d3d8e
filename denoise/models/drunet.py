"""DRUNet: a residual U-Net that takes the noise level as a map, so one network serves every level.

Zhang, Li, Zuo, Zhang, Van Gool, Timofte, "Plug-and-Play Image Restoration with Deep Denoiser Prior", TPAMI 2021
(arXiv 2008.13751), the denoiser of DPIR.

The input is the image with a constant (or spatially varying) noise-level map as one more channel. A 3x3 conv
to 64 channels; three encoder levels, each 4 residual blocks (3x3 conv, ReLU, 3x3 conv, plus the input) then a
2x2 stride-2 conv doubling the channels (64, 128, 256, 512); 4 residual blocks at the bottom; three decoder
levels, each a 2x2 stride-2 transposed conv halving the channels, added to the encoder skip, then 4 residual
blocks; a 3x3 conv to the image (no global residual: the network outputs the clean image). No biases, as in the
authors' code. The input is padded to a multiple of 8 and cropped back.

The paper's configuration has 32,640,960 parameters for RGB and 32,638,656 for grayscale (the "32.64M" of the
paper; the same count as the authors' code).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from denoise.models.noise_map import noise_level_map
from denoise.models.padding import check_pad_mode, crop_to, pad_to_multiple


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _residual_blocks(count: int, channels: int) -> list[nn.Module]:
    return [ResidualBlock(channels) for _ in range(count)]


class DRUNet(nn.Module):
    """DRUNet; ``forward(noisy, noise_level)`` with the level on the [0, 1] scale (a number per image or a map).
    ``pad_mode="replicate"`` pads as KAIR's test (``test_pad``), for the authors' weights."""

    #: the network reads a noise level (denoise.training.module feeds it)
    takes_noise_level = True

    def __init__(
        self, in_channels: int = 3, widths: Sequence[int] = (64, 128, 256, 512), blocks: int = 4,
        pad_mode: str = "reflect",
    ) -> None:  # fmt: skip
        super().__init__()
        self.pad_mode = check_pad_mode(pad_mode)
        if len(widths) != 4:
            raise ValueError(f"model.net.widths={list(widths)}: expected 4 levels")
        self.head = nn.Conv2d(in_channels + 1, widths[0], 3, padding=1, bias=False)
        self.downs = nn.ModuleList(
            nn.Sequential(*_residual_blocks(blocks, widths[i]), nn.Conv2d(widths[i], widths[i + 1], 2, 2, bias=False))
            for i in range(3)
        )
        self.body = nn.Sequential(*_residual_blocks(blocks, widths[3]))
        self.ups = nn.ModuleList(
            nn.Sequential(
                nn.ConvTranspose2d(widths[i + 1], widths[i], 2, 2, bias=False), *_residual_blocks(blocks, widths[i])
            )
            for i in (2, 1, 0)
        )
        self.tail = nn.Conv2d(widths[0], in_channels, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor, noise_level: torch.Tensor | float) -> torch.Tensor:
        level = noise_level_map(noise_level, x)
        padded, size = pad_to_multiple(torch.cat([x, level], dim=1), 8, self.pad_mode)
        skips = [self.head(padded)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        features = self.body(skips[-1])  # the bottom skip is added to the body's output
        for up in self.ups:
            features = up(features + skips.pop())
        return crop_to(self.tail(features + skips.pop()), size)
