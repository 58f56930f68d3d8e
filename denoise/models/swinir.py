"""SwinIR: residual groups of shifted-window transformer blocks, for denoising.

Liang, Cao, Sun, Zhang, Van Gool, Timofte, "SwinIR: Image Restoration Using Swin Transformer", ICCVW 2021
(arXiv 2108.10257).

A 3x3 conv to ``embed_dim`` features (shallow features); the deep part treats every pixel as a token: LayerNorm,
then residual Swin transformer blocks (RSTB), each a run of ``depth`` Swin blocks followed by a 3x3 conv and a
skip around the group; LayerNorm; a 3x3 conv, plus the shallow features; a 3x3 conv back to the image, plus
the input. A Swin block: LayerNorm, multi-head self-attention inside non-overlapping ``window x window`` windows
with a learnt relative-position bias (every other block shifts the windows by half a window, cyclically, with a
mask so that no token attends across the wrap), added to the input; LayerNorm, an MLP (GELU, ``mlp_ratio``),
added again; stochastic depth rising linearly to ``drop_path`` over the blocks. RGB inputs have the DIV2K mean
subtracted first and added back at the end.

The input is reflect-padded to a multiple of the window and cropped back (:mod:`denoise.models.padding`), so
any size works; the attention mask is computed for the padded size (and cached per size).

The paper's denoising configuration (``embed_dim=180``, 6 RSTBs of 6 blocks, 6 heads, window 8, MLP ratio 2)
has 11,504,163 parameters for RGB and 11,497,681 for grayscale: the count of the authors' code with the
settings of their ``color_dn``/``gray_dn`` test script.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from denoise.models.padding import crop_to, pad_to_multiple

#: the DIV2K mean the authors subtract from RGB inputs
RGB_MEAN = (0.4488, 0.4371, 0.4040)


class DropPath(nn.Module):
    """Stochastic depth: in training, drop the whole residual branch of a sample with probability ``p``."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand((x.shape[0],) + (1,) * (x.ndim - 1), device=x.device, dtype=x.dtype) >= self.p
        return x * keep / (1.0 - self.p)


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """``B x H x W x C`` -> ``(B * windows) x window² x C``."""
    batch, height, width, channels = x.shape
    x = x.view(batch, height // window, window, width // window, window, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, channels)


def window_reverse(windows: torch.Tensor, window: int, height: int, width: int) -> torch.Tensor:
    """Undo :func:`window_partition`: ``(B * windows) x window² x C`` -> ``B x H x W x C``."""
    channels = windows.shape[-1]
    x = windows.view(-1, height // window, width // window, window, window, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, height, width, channels)


def shift_mask(height: int, width: int, window: int, shift: int, device: torch.device) -> torch.Tensor:
    """``windows x window² x window²``: 0 between tokens that were neighbours before the cyclic shift, -100
    between tokens the shift brought together from opposite edges."""
    regions = torch.zeros(1, height, width, 1, device=device)
    label = 0
    for rows in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
        for cols in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
            regions[:, rows, cols, :] = label
            label += 1
    labels = window_partition(regions, window).squeeze(-1)  # windows x window²
    different = labels[:, None, :] != labels[:, :, None]
    return torch.zeros(different.shape, device=device).masked_fill(different, -100.0)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside a window, with a learnt bias per relative position and head."""

    def __init__(self, dim: int, window: int, heads: int) -> None:
        super().__init__()
        self.heads, self.window = heads, window
        self.scale = (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
        relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)  # window² x window² x 2
        self.register_buffer("relative_position_index", relative[..., 0] * (2 * window - 1) + relative[..., 1],
                             persistent=False)  # fmt: skip
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        windows, tokens, channels = x.shape
        qkv = self.qkv(x).reshape(windows, tokens, 3, self.heads, channels // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attention = q @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.reshape(-1)]
        attention = attention + bias.view(tokens, tokens, -1).permute(2, 0, 1)[None]
        if mask is not None:
            count = mask.shape[0]
            attention = attention.view(windows // count, count, self.heads, tokens, tokens) + mask[None, :, None]
            attention = attention.view(-1, self.heads, tokens, tokens)
        out = (attention.softmax(dim=-1) @ v).transpose(1, 2).reshape(windows, tokens, channels)
        return self.proj(out)


class SwinBlock(nn.Module):
    def __init__(self, dim: int, heads: int, window: int, shift: int, mlp_ratio: float, drop_path: float) -> None:
        super().__init__()
        self.window, self.shift = window, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, heads)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self._masks: dict[tuple, torch.Tensor] = {}

    def mask(self, height: int, width: int, device: torch.device) -> torch.Tensor | None:
        if self.shift == 0:
            return None
        if torch.compiler.is_exporting():  # symbolic sizes (ONNX export): computed in the graph, not cached
            return shift_mask(height, width, self.window, self.shift, device)
        key = (height, width, device)
        if key not in self._masks:
            self._masks = {key: shift_mask(height, width, self.window, self.shift, device)}  # the last size only
        return self._masks[key]

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        height, width = size
        batch, _, channels = x.shape
        shortcut = x
        x = self.norm1(x).view(batch, height, width, channels)
        if self.shift:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
        windows = self.attn(window_partition(x, self.window), self.mask(height, width, x.device))
        x = window_reverse(windows, self.window, height, width)
        if self.shift:
            x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
        x = shortcut + self.drop_path(x.reshape(batch, height * width, channels))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class ResidualSwinGroup(nn.Module):
    """RSTB: Swin blocks (alternately shifted), a 3x3 conv, and a skip around them."""

    def __init__(self, dim: int, depth: int, heads: int, window: int, mlp_ratio: float, drop_paths: list[float]):
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinBlock(dim, heads, window, 0 if i % 2 == 0 else window // 2, mlp_ratio, drop_paths[i])
            for i in range(depth)
        )
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        shortcut = x
        for block in self.blocks:
            x = block(x, size)
        batch, _, channels = x.shape
        image = x.transpose(1, 2).reshape(batch, channels, *size)
        return self.conv(image).flatten(2).transpose(1, 2) + shortcut


class SwinIR(nn.Module):
    """SwinIR for denoising; the defaults are the paper's denoising configuration."""

    def __init__(
        self,
        in_channels: int = 3,
        embed_dim: int = 180,
        depths: Sequence[int] = (6, 6, 6, 6, 6, 6),
        heads: Sequence[int] = (6, 6, 6, 6, 6, 6),
        window: int = 8,
        mlp_ratio: float = 2.0,
        drop_path: float = 0.1,
    ) -> None:
        super().__init__()
        if len(depths) != len(heads):
            raise ValueError(f"model.net.depths={list(depths)} and heads={list(heads)}: expected equal lengths")
        if embed_dim % max(heads):
            raise ValueError(f"model.net.embed_dim={embed_dim} must be divisible by every head count {list(heads)}")
        self.window = window
        mean = torch.tensor(RGB_MEAN if in_channels == 3 else (0.0,) * in_channels).view(1, in_channels, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.conv_first = nn.Conv2d(in_channels, embed_dim, 3, padding=1)
        self.embed_norm = nn.LayerNorm(embed_dim)
        rates = torch.linspace(0, drop_path, sum(depths), device="cpu").tolist()
        starts = [sum(depths[:i]) for i in range(len(depths))]
        self.layers = nn.ModuleList(
            ResidualSwinGroup(embed_dim, depth, head, window, mlp_ratio, rates[start : start + depth])
            for depth, head, start in zip(depths, heads, starts, strict=True)
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = nn.Conv2d(embed_dim, embed_dim, 3, padding=1)
        self.conv_last = nn.Conv2d(embed_dim, in_channels, 3, padding=1)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded, size = pad_to_multiple(x, self.window)
        centred = padded - self.mean.to(padded.dtype)
        shallow = self.conv_first(centred)
        batch, channels, height, width = shallow.shape
        tokens = self.embed_norm(shallow.flatten(2).transpose(1, 2))
        for layer in self.layers:
            tokens = layer(tokens, (height, width))
        deep = self.norm(tokens).transpose(1, 2).reshape(batch, channels, height, width)
        residual = self.conv_after_body(deep) + shallow
        out = centred + self.conv_last(residual) + self.mean.to(padded.dtype)
        return crop_to(out, size)
