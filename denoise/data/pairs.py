"""Aligned random crops and dihedral augmentation applied identically to every image of a sample."""

from __future__ import annotations

import numpy as np
import torch


def random_crop_box(height: int, width: int, size: int, generator: torch.Generator | None = None) -> tuple[int, int]:
    """Top-left corner of a uniformly random ``size x size`` crop inside ``height x width``."""
    if height < size or width < size:
        raise ValueError(f"cannot crop {size}x{size} from a {height}x{width} image")
    top = int(torch.randint(0, height - size + 1, (), generator=generator))
    left = int(torch.randint(0, width - size + 1, (), generator=generator))
    return top, left


def crop(image: np.ndarray, top: int, left: int, size: int) -> np.ndarray:
    """``H x W x C`` view of a square crop (no copy)."""
    return image[top : top + size, left : left + size]


def dihedral(tensor: torch.Tensor, index: int) -> torch.Tensor:
    """One of the 8 flips/rotations of a ``... x H x W`` tensor (index 0 is the identity)."""
    if index >= 4:
        tensor = tensor.flip(-1)
    return torch.rot90(tensor, index % 4, dims=(-2, -1))


def random_dihedral(*tensors: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
    """Apply the same random flip/rot90 to all tensors, keeping them aligned."""
    index = int(torch.randint(0, 8, (), generator=generator))
    return tuple(dihedral(t, index).contiguous() for t in tensors)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """``H x W x C`` uint8/uint16/float array -> float32 ``C x H x W`` tensor in [0, 1]."""
    if image.dtype == np.uint8:
        array = image.astype(np.float32) / 255.0
    elif image.dtype == np.uint16:
        array = image.astype(np.float32) / 65535.0
    else:
        array = image.astype(np.float32, copy=False)
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
