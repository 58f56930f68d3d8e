"""The noise-level input of the networks that take one (FFDNet, DRUNet): a number per image or a map per pixel,
on the [0, 1] intensity scale (sigma / 255 for 8-bit levels), made into a ``B x 1 x H x W`` map."""

from __future__ import annotations

import torch


def noise_level_map(level: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    """``level`` (a number, ``B``, ``B x 1`` or ``B x 1 x H x W`` with ``like``'s height and width) as a
    ``B x 1 x H x W`` map of ``like``'s dtype and device."""
    batch, _, height, width = like.shape
    level = torch.as_tensor(level, dtype=like.dtype, device=like.device)
    if level.ndim == 4 and level.shape[-2:] == (1, 1):  # one level per image, as a B x 1 x 1 x 1 tensor
        level = level.reshape(-1)
    if level.ndim == 4:
        if level.shape[1] != 1 or level.shape[-2:] != like.shape[-2:]:
            raise ValueError(
                f"a noise-level map must be B x 1 x {height} x {width} like the image, got {tuple(level.shape)}"
            )
        return level.expand(batch, 1, height, width)
    level = level.reshape(-1, 1, 1, 1) if level.ndim else level.reshape(1, 1, 1, 1)
    if level.shape[0] not in (1, batch):
        raise ValueError(f"{level.shape[0]} noise levels for a batch of {batch} images")
    return level.expand(batch, 1, height, width)


class LevelInput(torch.nn.Module):
    """A noise-level network as a one-input network: the level map rides along as the input's last channel,
    so tiles, padding and the x8 ensemble cut and turn it exactly as they do the image."""

    #: the input's channels that are not the image's: its output has one channel fewer than its input
    extra_input_channels = 1

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net
        self.size_multiple = int(getattr(net, "size_multiple", 1))  # tiles on the wrapped network's grid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x[:, :-1], x[:, -1:])
