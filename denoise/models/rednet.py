"""REDNet: residual encoder-decoder network with symmetric skip connections.

Mao, Shen, Yang, "Image Restoration Using Very Deep Convolutional Encoder-Decoder Networks with
Symmetric Skip Connections", NIPS 2016 (arXiv 1606.08921). Not the RGB-D segmentation "RedNet".

Structure (denoising variant: stride 1, 3x3 kernels throughout, so any image size works):

* ``depth / 2`` convolution layers ``e_k = ReLU(conv_k(e_{k-1}))`` with ``e_0`` the noisy input;
* ``depth / 2`` transposed-convolution ("deconvolution") layers, each followed by ReLU except the last;
* a skip from every second convolution layer (``e_2, e_4, ...``) to its mirrored deconvolution layer:
  deconvolution ``j`` produces features shaped like ``e_{N-j}``, the two are summed, then ReLU. RED10 is
  the paper's plain 10-layer encoder-decoder and has no skips;
* the last deconvolution predicts the residual and the input is added back: ``out = x + net(x)``.

Parameter counts (3x3 kernels, biases everywhere), ``N = depth / 2``, ``c`` image channels, ``f``
feature channels: ``(9cf + f) + 2 (N - 1)(9f^2 + f) + (9fc + c)``. RED30, ``f = 64``: 1,037,507 for RGB and
1,035,201 for gray; ``f = 128`` (the authors' released model), gray: 4,134,785.
"""

from __future__ import annotations

import torch
from torch import nn

SUPPORTED_DEPTHS = (10, 20, 30)


class REDNet(nn.Module):
    """RED10/20/30 with ``channels`` feature maps; ``in_channels`` image channels in and out."""

    size_multiple = 1  # stride 1 everywhere: any height and width

    def __init__(self, depth: int = 30, channels: int = 64, in_channels: int = 3, skip_every: int = 2) -> None:
        super().__init__()
        if depth not in SUPPORTED_DEPTHS:
            raise ValueError(f"model.net.depth={depth} is not a REDNet depth; expected one of {SUPPORTED_DEPTHS}")
        if channels < 1 or in_channels < 1:
            raise ValueError(f"model.net.channels and in_channels must be positive, got {channels}, {in_channels}")
        self.depth = depth
        half = depth // 2
        self.encoder = nn.ModuleList(
            nn.Conv2d(in_channels if k == 0 else channels, channels, 3, padding=1) for k in range(half)
        )
        self.decoder = nn.ModuleList(
            nn.ConvTranspose2d(channels, in_channels if j == half - 1 else channels, 3, padding=1) for j in range(half)
        )
        # encoder index k (1-based, e_k) -> decoder index j (1-based) whose output is shaped like e_k
        skip_sources = [k for k in range(skip_every, half, skip_every)] if depth > 10 else []
        self.skip_into = {half - k: k for k in skip_sources}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        h = x
        for conv in self.encoder:
            h = torch.relu(conv(h))
            features.append(h)
        half = len(self.decoder)
        for j, deconv in enumerate(self.decoder, start=1):
            h = deconv(h)
            if j == half:
                break
            source = self.skip_into.get(j)
            h = torch.relu(h + features[source]) if source is not None else torch.relu(h)
        return x + h
