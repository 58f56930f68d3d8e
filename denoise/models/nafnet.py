"""NAFNet: a nonlinear-activation-free U-Net of NAFBlocks.

Chen, Chu, Zhang, Sun, "Simple Baselines for Image Restoration", ECCV 2022 (arXiv 2204.04676).

NAFBlock (channels c): LayerNorm2d -> 1x1 conv to 2c -> 3x3 depthwise conv -> SimpleGate (split the
channels in two halves and multiply them: c channels) -> simplified channel attention (global average pool,
1x1 conv, rescale) -> 1x1 conv to c, added to the input scaled by a learnt ``beta`` (initialized to 0);
then LayerNorm2d -> 1x1 conv to 2c -> SimpleGate -> 1x1 conv to c, added back scaled by ``gamma`` (0 at
init). No ReLU, GELU or sigmoid anywhere: the gates supply the nonlinearity.

U-Net: 3x3 intro conv to ``width``; each encoder level is a run of NAFBlocks then a 2x2 stride-2 conv that
doubles the channels; the middle blocks; each decoder level is a 1x1 conv + PixelShuffle(2) that halves the
channels, added to the encoder skip, then its NAFBlocks; a 3x3 conv back to the image, plus the input. The
input is padded to a multiple of 2^levels and cropped back (:mod:`denoise.models.padding`).

The SIDD configuration (``width=32``, encoder [2, 2, 4, 8], 12 middle blocks, decoder [2, 2, 2, 2]) has
29,159,715 parameters for RGB (the layers of the official NAFNet code, so the same count); the CPU preset
``nafnet_small`` (width 16, encoder [1, 1, 1, 1], 1 middle block, decoder [1, 1, 1, 1]) has 1,137,203.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from denoise.models.padding import check_pad_mode, crop_to, pad_to_multiple


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of each pixel of a ``B x C x H x W`` tensor."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=1, keepdim=True)
        var = (x - mean).pow(2).mean(dim=1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class SimpleGate(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, second = x.chunk(2, dim=1)
        return first * second


class NAFBlock(nn.Module):
    def __init__(self, channels: int, dw_expand: int = 2, ffn_expand: int = 2) -> None:
        super().__init__()
        dw_channels = channels * dw_expand
        self.norm1 = LayerNorm2d(channels)
        self.conv1 = nn.Conv2d(channels, dw_channels, 1)
        self.conv2 = nn.Conv2d(dw_channels, dw_channels, 3, padding=1, groups=dw_channels)
        self.gate = SimpleGate()
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dw_channels // 2, dw_channels // 2, 1))
        self.conv3 = nn.Conv2d(dw_channels // 2, channels, 1)
        ffn_channels = channels * ffn_expand
        self.norm2 = LayerNorm2d(channels)
        self.conv4 = nn.Conv2d(channels, ffn_channels, 1)
        self.conv5 = nn.Conv2d(ffn_channels // 2, channels, 1)
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        x = self.gate(self.conv2(self.conv1(self.norm1(inp))))
        x = self.conv3(x * self.sca(x))
        y = inp + x * self.beta
        x = self.conv5(self.gate(self.conv4(self.norm2(y))))
        return y + x * self.gamma


class NAFNet(nn.Module):
    """NAFNet U-Net; ``enc_blocks``/``dec_blocks`` give the NAFBlocks per level. ``pad_mode="zeros"`` pads as the
    authors' ``check_image_size`` (their weights' own outputs at sizes that are no multiple of 2^levels)."""

    def __init__(
        self,
        in_channels: int = 3,
        width: int = 32,
        enc_blocks: Sequence[int] = (2, 2, 4, 8),
        middle_blocks: int = 12,
        dec_blocks: Sequence[int] = (2, 2, 2, 2),
        pad_mode: str = "reflect",
    ) -> None:
        super().__init__()
        self.pad_mode = check_pad_mode(pad_mode)
        if len(enc_blocks) != len(dec_blocks):
            raise ValueError(
                f"model.net.enc_blocks {list(enc_blocks)} and dec_blocks {list(dec_blocks)} differ in length"
            )
        self.size_multiple = 2 ** len(enc_blocks)
        self.intro = nn.Conv2d(in_channels, width, 3, padding=1)
        self.ending = nn.Conv2d(width, in_channels, 3, padding=1)
        self.encoders, self.downs = nn.ModuleList(), nn.ModuleList()
        self.decoders, self.ups = nn.ModuleList(), nn.ModuleList()
        channels = width
        for count in enc_blocks:
            self.encoders.append(nn.Sequential(*(NAFBlock(channels) for _ in range(count))))
            self.downs.append(nn.Conv2d(channels, 2 * channels, 2, stride=2))
            channels *= 2
        self.middle = nn.Sequential(*(NAFBlock(channels) for _ in range(middle_blocks)))
        for count in dec_blocks:
            self.ups.append(nn.Sequential(nn.Conv2d(channels, 2 * channels, 1, bias=False), nn.PixelShuffle(2)))
            channels //= 2
            self.decoders.append(nn.Sequential(*(NAFBlock(channels) for _ in range(count))))

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        inp, size = pad_to_multiple(inp, self.size_multiple, self.pad_mode)
        x = self.intro(inp)
        skips = []
        for encoder, down in zip(self.encoders, self.downs, strict=True):
            x = encoder(x)
            skips.append(x)
            x = down(x)
        x = self.middle(x)
        for decoder, up, skip in zip(self.decoders, self.ups, reversed(skips), strict=True):
            x = decoder(up(x) + skip)
        return crop_to(self.ending(x) + inp, size)
