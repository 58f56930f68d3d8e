"""MWCNN: a U-Net whose down- and up-sampling are the Haar wavelet transform and its inverse.

Liu, Zhang, Zhang, Lin, Zuo, "Multi-level Wavelet-CNN for Image Restoration", CVPR Workshops 2018
(arXiv 1805.07071, Fig. 3).

* DWT/IWT are exact, invertible, parameter-free layers. On the pixels a (even row, even column),
  b (odd row, even column), c (even row, odd column) and d (odd row, odd column) of each 2x2 block, after
  dividing by 2: LL = a+b+c+d, HL = -a-b+c+d, LH = -a+b-c+d, HH = a-b-c+d, stacked band-major along channels
  (``[LL, HL, LH, HH]``, C channels each). The transform is orthonormal, so it preserves energy, and IWT
  inverts it exactly.
* Blocks are 3x3 conv + BatchNorm + ReLU; the first conv (on the first DWT) and the last conv (to the
  image's four sub-bands) have no BatchNorm, and the last has no ReLU.
* Level widths 160 / 256 / 256. Each non-deepest level ``l`` has an encoder (block to its width + 3 blocks)
  and a decoder (3 blocks + a block to 4x the width of the level above); the deepest level is a block to
  256, 6 blocks and the expand block to 1024 (= 4 x 256). Each level's decoder output is summed with that
  level's DWT output and then inverted by the IWT (at level 1 this is the global residual).
* 3 levels give 4 + 4 + 8 + 4 + 4 = 24 conv layers. ``levels >= 4`` repeats the level-3 (256-channel)
  configuration for each extra level, as the paper suggests.

Gray parameter count, 3 levels (convs with biases; BN weight+bias = 2 per channel):
  level-1 encoder: (4*160*9 + 160) + 3 * (160*160*9 + 160 + 320) = 5,920 + 692,640 = 698,560
  level-2 encoder: (640*256*9 + 256 + 512) + 3 * (256*256*9 + 256 + 512) = 1,475,328 + 1,771,776
  deepest level:   (1024*256*9 + 256 + 512) + 6 * (590,080 + 512) + (256*1024*9 + 1024 + 2048) = 8,268,288
  level-2 decoder: 3 * 590,592 + (256*640*9 + 640 + 1280) = 1,771,776 + 1,476,480
  level-1 decoder: 3 * 231,040 + (160*4*9 + 4) = 693,120 + 5,764
  total: 16,158,308 (16,145,892 in convolutions + 12,416 in BatchNorm), the paper's "about 16.2 M".
"""

from __future__ import annotations

import torch
from torch import nn

from denoise.models.padding import crop_to, pad_to_multiple


def haar_dwt(x: torch.Tensor) -> torch.Tensor:
    """``B x C x H x W`` -> ``B x 4C x H/2 x W/2`` (bands LL, HL, LH, HH); H and W must be even."""
    a = x[..., 0::2, 0::2] / 2
    b = x[..., 1::2, 0::2] / 2
    c = x[..., 0::2, 1::2] / 2
    d = x[..., 1::2, 1::2] / 2
    return torch.cat((a + b + c + d, -a - b + c + d, -a + b - c + d, a - b - c + d), dim=1)


def haar_iwt(y: torch.Tensor) -> torch.Tensor:
    """The exact inverse of :func:`haar_dwt`: ``B x 4C x H x W`` -> ``B x C x 2H x 2W``."""
    ll, hl, lh, hh = (band / 2 for band in y.chunk(4, dim=1))
    a, b = ll - hl - lh + hh, ll - hl + lh - hh
    c, d = ll + hl - lh - hh, ll + hl + lh + hh
    batch, channels, height, width = a.shape
    even_rows = torch.stack((a, c), dim=-1).reshape(batch, channels, height, 2 * width)
    odd_rows = torch.stack((b, d), dim=-1).reshape(batch, channels, height, 2 * width)
    return torch.stack((even_rows, odd_rows), dim=-2).reshape(batch, channels, 2 * height, 2 * width)


class DWT(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return haar_dwt(x)


class IWT(nn.Module):
    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return haar_iwt(y)


def block(in_channels: int, out_channels: int, batch_norm: bool = True) -> nn.Sequential:
    """3x3 conv (+ BatchNorm) + ReLU."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 3, padding=1)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels, eps=1e-4))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class MWCNN(nn.Module):
    """Multi-level wavelet CNN (3 levels: 160/256/256 channels, 24 conv layers)."""

    def __init__(self, in_channels: int = 1, levels: int = 3, widths: tuple[int, ...] = (160, 256, 256)) -> None:
        super().__init__()
        if levels < 2:
            raise ValueError(f"model.net.levels={levels}: MWCNN needs at least 2 levels")
        widths = tuple(widths) + (widths[-1],) * max(0, levels - len(widths))
        self.levels = levels
        self.size_multiple = 2**levels
        self.dwt, self.iwt = DWT(), IWT()
        above = [in_channels, *widths[: levels - 1]]  # channels of the level each level's IWT returns to
        self.encoders = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for level in range(levels - 1):
            width, into = widths[level], 4 * above[level]
            self.encoders.append(
                nn.Sequential(block(into, width, batch_norm=level > 0), *(block(width, width) for _ in range(3)))
            )
            last = nn.Conv2d(width, into, 3, padding=1) if level == 0 else block(width, into)
            self.decoders.append(nn.Sequential(*(block(width, width) for _ in range(3)), last))
        width, into = widths[levels - 1], 4 * above[levels - 1]
        self.deepest = nn.Sequential(block(into, width), *(block(width, width) for _ in range(6)), block(width, into))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, size = pad_to_multiple(x, self.size_multiple)
        subbands = []
        h = x
        for encoder in self.encoders:
            subbands.append(self.dwt(h))
            h = encoder(subbands[-1])
        subbands.append(self.dwt(h))
        h = self.iwt(self.deepest(subbands[-1]) + subbands[-1])
        for decoder, bands in zip(reversed(self.decoders), reversed(subbands[:-1]), strict=True):
            h = self.iwt(decoder(h) + bands)
        return crop_to(h, size)
