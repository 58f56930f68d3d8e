"""PRIDNet: pyramid real image denoising network.

Zhao, Lam, Lun, "Pyramid Real Image Denoising Network", IEEE VCIP 2019 (arXiv 1908.00273); the authors'
TensorFlow ``network.py`` is the reference for every layer below.

Three stages, for an image with C channels:

1. **Noise estimation**: 4 x (3x3 conv, 32 channels, LeakyReLU 0.2), channel attention (global average pool,
   dense 32 -> 2, ReLU, dense 2 -> 32, sigmoid, rescale), a 3x3 conv to C channels (LeakyReLU), concatenated
   with the input: 2C channels.
2. **Multi-scale denoising**: average pooling by 1, 2, 4, 8 and 16; each branch through its own U-Net
   (32/64/128/256/512 channels, 4 convs per encoder level, 2x2 max-pool, 2x2 transposed conv (no bias)
   + concatenation with the skip, 3 convs per decoder level, LeakyReLU 0.2, 1x1 conv to C); bilinear
   upsampling back to full size; all concatenated with the stage-1 output: 7C channels.
3. **Kernel selecting**: 3x3, 5x5 and 7x7 conv branches (7C -> 7C, LeakyReLU); selective-kernel attention
   (global average pool of their sum, dense 7C -> 4, ReLU, three dense 4 -> 7C heads, softmax across the
   three branches per channel); the weighted sum; a final 3x3 conv to C. There is no global residual.

Any input size: the input is padded to a multiple of 16 (so every pooled branch maps back exactly) and
the output cropped back; inside the U-Nets, max-pooling rounds up and transposed convolutions are cropped
to the skip's size, as TensorFlow's 'SAME' layers do. Upsampling uses PyTorch's half-pixel bilinear
interpolation (TensorFlow 1's legacy resize did not use half-pixel centers).

Parameters: one U-Net on 2C inputs has 14,831,584 + (32C + C) weights; for RGB the whole network has
74,225,723 (five U-Nets 74,158,415, noise estimation 29,669, kernel selecting 37,639), the paper's
"about 74.2 M". ``width`` scales the 32-based widths (and the attention bottleneck); ``width=2`` (the seed's
Keras version, every width doubled) has 296,713,821 parameters for RGB.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from denoise.models.padding import crop_to, pad_to_multiple

POOL_SCALES = (1, 2, 4, 8, 16)


def _conv(in_channels: int, out_channels: int, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2), nn.LeakyReLU(0.2))


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation: per-channel weights from the global average."""

    def __init__(self, channels: int, middle: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)  # a module, so TLC can make it local (denoise/models/tlc.py)
        self.squeeze = nn.Linear(channels, middle)
        self.excite = nn.Linear(middle, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(x).permute(0, 2, 3, 1)  # B x 1 x 1 x C (or B x H x W x C, local)
        weights = torch.sigmoid(self.excite(torch.relu(self.squeeze(pooled))))
        return x * weights.permute(0, 3, 1, 2)


class NoiseEstimation(nn.Module):
    def __init__(self, in_channels: int, features: int, middle: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv(in_channels, features), *(_conv(features, features) for _ in range(3)),
            ChannelAttention(features, middle),
            _conv(features, in_channels),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class UNet(nn.Module):
    """The per-branch U-Net: 4 convs per encoder level, 3 per decoder level, 1x1 conv out."""

    def __init__(self, in_channels: int, out_channels: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        self.encoders = nn.ModuleList()
        previous = in_channels
        for width in widths:
            self.encoders.append(nn.Sequential(_conv(previous, width), *(_conv(width, width) for _ in range(3))))
            previous = width
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for width in reversed(widths[:-1]):
            self.ups.append(nn.ConvTranspose2d(previous, width, 2, stride=2, bias=False))
            self.decoders.append(nn.Sequential(_conv(2 * width, width), *(_conv(width, width) for _ in range(2))))
            previous = width
        self.out = nn.Conv2d(previous, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, encoder in enumerate(self.encoders):
            if i > 0:
                x = F.max_pool2d(x, 2, ceil_mode=True)
            x = encoder(x)
            skips.append(x)
        for up, decoder, skip in zip(self.ups, self.decoders, reversed(skips[:-1]), strict=True):
            x = up(x)[..., : skip.shape[-2], : skip.shape[-1]]
            x = decoder(torch.cat((x, skip), dim=1))
        return self.out(x)


class SelectiveKernel(nn.Module):
    """3x3 / 5x5 / 7x7 branches mixed by channel-wise softmax attention."""

    def __init__(self, channels: int, middle: int = 4) -> None:
        super().__init__()
        self.branches = nn.ModuleList(_conv(channels, channels, k) for k in (3, 5, 7))
        self.pool = nn.AdaptiveAvgPool2d(1)  # a module, so TLC can make it local
        self.squeeze = nn.Linear(channels, middle)
        self.heads = nn.ModuleList(nn.Linear(middle, channels) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = torch.stack([branch(x) for branch in self.branches], dim=1)  # B x 3 x C x H x W
        z = torch.relu(self.squeeze(self.pool(features.sum(dim=1)).permute(0, 2, 3, 1)))  # B x h x w x middle
        attention = torch.softmax(torch.stack([head(z) for head in self.heads], dim=1), dim=1)  # B x 3 x h x w x C
        return (features * attention.permute(0, 1, 4, 2, 3)).sum(dim=1)


class PRIDNet(nn.Module):
    """Noise estimation, five-scale pyramid of U-Nets, selective-kernel fusion."""

    size_multiple = 16

    def __init__(self, in_channels: int = 3, width: float = 1.0) -> None:
        super().__init__()
        if width <= 0:
            raise ValueError(f"model.net.width={width} must be positive")
        features = max(1, round(32 * width))
        widths = tuple(max(1, round(w * width)) for w in (32, 64, 128, 256, 512))
        self.estimate = NoiseEstimation(in_channels, features, middle=max(1, round(2 * width)))
        self.unets = nn.ModuleList(UNet(2 * in_channels, in_channels, widths) for _ in POOL_SCALES)
        self.select = SelectiveKernel(7 * in_channels, middle=4)
        self.out = nn.Conv2d(7 * in_channels, in_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, original = pad_to_multiple(x, self.size_multiple)
        features = torch.cat((x, self.estimate(x)), dim=1)
        size = features.shape[-2:]
        branches = [features]
        for scale, unet in zip(POOL_SCALES, self.unets, strict=True):
            pooled = F.avg_pool2d(features, scale) if scale > 1 else features
            out = unet(pooled)
            branches.append(F.interpolate(out, size=size, mode="bilinear", align_corners=False) if scale > 1 else out)
        return crop_to(self.out(self.select(torch.cat(branches, dim=1))), original)
