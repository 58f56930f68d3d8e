"""DnCNN: residual learning of the noise with a plain deep CNN.

Zhang, Zuo, Chen, Meng, Zhang, "Beyond a Gaussian Denoiser: Residual Learning of Deep CNN for Image
Denoising", IEEE TIP 2017 (arXiv 1608.03981).

Structure: ``depth`` 3x3 convolutions with ``channels`` feature maps in one ``nn.Sequential`` named
``dncnn``: conv (with bias) + ReLU, then ``depth - 2`` x (conv without bias + BatchNorm2d(eps=1e-4) + ReLU),
then a conv without bias back to the image channels. The network estimates the noise and the output is
``input - net(input)``. The layer indices match the authors' PyTorch release (``dncnn.0.weight``,
``dncnn.0.bias``, ``dncnn.2.weight``, ``dncnn.3.weight``, ...), so their state dicts load unchanged.

``batch_norm=False`` is the form KAIR releases its weights in (each BatchNorm merged into the conv before it):
every conv with a bias and no BatchNorm, ``dncnn.0``, ``dncnn.2``, ... in KAIR's ``model.0``, ``model.2`` order.

Parameters, depth 17, 64 channels, gray: 640 + 15 x (36,864 + 128) + 576 = 556,096 (plus BatchNorm
running statistics, which are buffers); 640 + 15 x (36,864 + 64) + 577 = 555,137 without BatchNorm
(KAIR's dncnn_25.pth).
"""

from __future__ import annotations

import torch
from torch import nn


class DnCNN(nn.Module):
    """DnCNN-S/B: ``depth`` layers, ``channels`` features, predicts the noise and subtracts it."""

    size_multiple = 1

    def __init__(self, in_channels: int = 1, depth: int = 17, channels: int = 64, batch_norm: bool = True) -> None:
        super().__init__()
        if depth < 3:
            raise ValueError(f"model.net.depth={depth}: DnCNN needs at least 3 layers")
        layers: list[nn.Module] = [nn.Conv2d(in_channels, channels, 3, padding=1, bias=True), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            if batch_norm:
                layers += [
                    nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                    nn.BatchNorm2d(channels, eps=1e-4, momentum=0.95),
                    nn.ReLU(inplace=True),
                ]
            else:  # KAIR's released form: the norm merged into the conv's weights and bias
                layers += [nn.Conv2d(channels, channels, 3, padding=1, bias=True), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(channels, in_channels, 3, padding=1, bias=not batch_norm))
        self.dncnn = nn.Sequential(*layers)
        for module in self.modules():  # the authors' initialization
            if isinstance(module, nn.Conv2d):
                nn.init.orthogonal_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.dncnn(x)
