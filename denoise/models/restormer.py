"""Restormer: a U-Net of transformer blocks whose attention runs across channels, not pixels.

Zamir, Arora, Khan, Hayat, Khan, Yang, "Restormer: Efficient Transformer for High-Resolution Image Restoration",
CVPR 2022 (arXiv 2111.09881).

Transformer block (``dim`` channels): LayerNorm over the channels of each pixel, then **MDTA** (multi-Dconv head
transposed attention: 1x1 conv to q, k, v, a 3x3 depthwise conv on each, q and k L2-normalized along the pixels,
a ``heads x C/heads x C/heads`` attention map scaled by a learnt per-head temperature, softmax, applied to v,
1x1 conv out), added to the input; LayerNorm, then **GDFN** (gated-Dconv feed-forward: 1x1 conv to 2 x
``int(dim * 2.66)``, 3x3 depthwise conv, GELU of one half times the other, 1x1 conv back), added again. Because
attention mixes channels, its cost is linear in the number of pixels; but every attention map sums over the
whole image, so a network trained on crops sees other statistics on whole images (the TLC option,
``local_window``, computes it over training-sized windows instead).

U-Net: 3x3 conv to ``dim``; four levels of [4, 6, 6, 8] blocks with [1, 2, 4, 8] heads; down-sampling is a 3x3
conv halving the channels then PixelUnshuffle(2) (so channels double), up-sampling a 3x3 conv doubling them then
PixelShuffle(2); decoder levels 3 and 2 concatenate the skip and reduce with a 1x1 conv, level 1 concatenates
and stays at 2 x ``dim``; 4 refinement blocks; a 3x3 conv to the image, plus the input. No biases in the convs.
The authors' denoisers, Gaussian and real (SIDD) alike, use the bias-free LayerNorm (``layer_norm="bias_free"``,
their ``BiasFree``); the one with bias (``with_bias``) is their default for deraining and deblurring.
The input is padded to a multiple of 8 and cropped back (:mod:`denoise.models.padding`).

The paper's configuration has 26,111,668 parameters for RGB with the bias-free norm (26,126,644 with bias,
the "26.13M" of the paper's tables; the count of the authors' code).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from denoise.models.padding import crop_to, pad_to_multiple
from denoise.models.tlc import local_transposed_attention


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of each pixel; ``bias=False`` is Restormer's BiasFree variant, which scales by
    the standard deviation without subtracting the mean."""

    def __init__(self, channels: int, bias: bool = True, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        variance = x.var(dim=1, keepdim=True, unbiased=False)
        if self.bias is None:
            return x / torch.sqrt(variance + self.eps) * self.weight[:, None, None]
        normalized = (x - x.mean(dim=1, keepdim=True)) / torch.sqrt(variance + self.eps)
        return normalized * self.weight[:, None, None] + self.bias[:, None, None]


class TransposedAttention(nn.Module):
    """MDTA: attention between the channels of each head, over all pixels (or, with ``local_window``, over the
    ``local_window x local_window`` neighbourhood of each pixel: TLC)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, 1, bias=False)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, 3, padding=1, groups=dim * 3, bias=False)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=False)
        #: TLC: attention over windows of this size instead of the whole map (denoise/models/tlc.py)
        self.local_window: tuple[int, int] | None = None

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``B x C x H x W`` query, key and value -> the attended value, over the whole image."""
        batch, channels, height, width = q.shape
        q, k, v = (t.reshape(batch, self.heads, channels // self.heads, height * width) for t in (q, k, v))
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attention = ((q @ k.transpose(-2, -1)) * self.temperature).softmax(dim=-1)
        return (attention @ v).reshape(batch, channels, height, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)
        window = self.local_window
        if window is None or (x.shape[-2] <= window[0] and x.shape[-1] <= window[1]):
            return self.project_out(self.attend(q, k, v))
        return self.project_out(local_transposed_attention(q, k, v, self.heads, self.temperature, window))


class GatedFeedForward(nn.Module):
    """GDFN: a depthwise-conv feed-forward network gated by GELU."""

    def __init__(self, dim: int, expansion: float) -> None:
        super().__init__()
        hidden = int(dim * expansion)
        self.project_in = nn.Conv2d(dim, hidden * 2, 1, bias=False)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2, bias=False)
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(gate) * value)


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, expansion: float, norm_bias: bool) -> None:
        super().__init__()
        self.norm1 = ChannelLayerNorm(dim, norm_bias)
        self.attn = TransposedAttention(dim, heads)
        self.norm2 = ChannelLayerNorm(dim, norm_bias)
        self.ffn = GatedFeedForward(dim, expansion)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


def _blocks(count: int, dim: int, heads: int, expansion: float, norm_bias: bool) -> nn.Sequential:
    return nn.Sequential(*[TransformerBlock(dim, heads, expansion, norm_bias) for _ in range(count)])


class Restormer(nn.Module):
    """Restormer for denoising; the defaults are the paper's configuration with the bias-free norm of its
    Gaussian denoisers."""

    def __init__(
        self,
        in_channels: int = 3,
        dim: int = 48,
        blocks: Sequence[int] = (4, 6, 6, 8),
        refinement_blocks: int = 4,
        heads: Sequence[int] = (1, 2, 4, 8),
        ffn_expansion: float = 2.66,
        layer_norm: str = "bias_free",
    ) -> None:
        super().__init__()
        if layer_norm not in ("bias_free", "with_bias"):
            raise ValueError(f"model.net.layer_norm={layer_norm!r}: expected bias_free or with_bias")
        if len(blocks) != 4 or len(heads) != 4:
            raise ValueError(f"model.net.blocks={list(blocks)} and heads={list(heads)}: expected 4 levels each")
        bias = layer_norm == "with_bias"
        widths = [dim, dim * 2, dim * 4, dim * 8]
        self.patch_embed = nn.Conv2d(in_channels, dim, 3, padding=1, bias=False)
        self.encoders = nn.ModuleList(
            _blocks(blocks[level], widths[level], heads[level], ffn_expansion, bias) for level in range(3)
        )
        self.downs = nn.ModuleList(
            nn.Sequential(nn.Conv2d(widths[level], widths[level] // 2, 3, padding=1, bias=False), nn.PixelUnshuffle(2))
            for level in range(3)
        )
        self.latent = _blocks(blocks[3], widths[3], heads[3], ffn_expansion, bias)
        self.ups = nn.ModuleList(  # level 3 -> 2 -> 1 -> 0
            nn.Sequential(nn.Conv2d(widths[level], widths[level] * 2, 3, padding=1, bias=False), nn.PixelShuffle(2))
            for level in (3, 2, 1)
        )
        self.reduce = nn.ModuleList(nn.Conv2d(widths[level + 1], widths[level], 1, bias=False) for level in (2, 1))
        self.decoders = nn.ModuleList(
            [
                _blocks(blocks[2], widths[2], heads[2], ffn_expansion, bias),
                _blocks(blocks[1], widths[1], heads[1], ffn_expansion, bias),
                _blocks(blocks[0], widths[1], heads[0], ffn_expansion, bias),  # level 1 stays at 2 x dim
            ]
        )
        self.refinement = _blocks(refinement_blocks, widths[1], heads[0], ffn_expansion, bias)
        self.output = nn.Conv2d(widths[1], in_channels, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded, size = pad_to_multiple(x, 8)
        features = self.patch_embed(padded)
        skips = []
        for encoder, down in zip(self.encoders, self.downs, strict=True):
            features = encoder(features)
            skips.append(features)
            features = down(features)
        features = self.latent(features)
        for index, (up, decoder) in enumerate(zip(self.ups, self.decoders, strict=True)):
            features = torch.cat([up(features), skips.pop()], dim=1)
            if index < 2:
                features = self.reduce[index](features)
            features = decoder(features)
        features = self.refinement(features)
        return crop_to(self.output(features) + padded, size)
