"""The geometric primitives every path shares: aligned square crops and the 8 flips/rotations (the dihedral
group) with their inverses, for tensors and, as views, for arrays.

One definition serves training augmentation (a random transform of every image of a sample), the patch
store (views, no copy), the on-device batches (the same 8 transforms folded into indices) and the x8
self-ensemble at test time (each transform undone by :func:`inverse_dihedral`), as KAIR's ``augment_img``
serves both its training and its x8 testing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from denoise.data.io import array2tensor


def random_crop_box(height: int, width: int, size: int, generator: torch.Generator | None = None) -> tuple[int, int]:
    """Top-left corner of a uniformly random ``size x size`` crop inside ``height x width``."""
    if height < size or width < size:
        raise ValueError(f"cannot crop {size}x{size} from a {height}x{width} image")
    top = int(torch.randint(0, height - size + 1, (), generator=generator))
    left = int(torch.randint(0, width - size + 1, (), generator=generator))
    return top, left


def random_patch(
    images: Sequence[np.ndarray], size: int, augment: bool, generator: torch.Generator | None = None
) -> tuple[int, torch.Tensor]:
    """A training patch of one of ``images``: the image (uniformly), a ``size x size`` crop and, with ``augment``,
    one of the 8 flips/rotations, drawn from ``generator`` in that order. Returns the image's index and the
    ``C x size x size`` tensor."""
    pick = int(torch.randint(0, len(images), (), generator=generator))
    image = images[pick]
    top, left = random_crop_box(image.shape[0], image.shape[1], size, generator)
    patch = array2tensor(crop(image, top, left, size))
    if augment:
        (patch,) = random_dihedral(patch, generator=generator)
    return pick, patch


def crop(image: np.ndarray, top: int, left: int, size: int) -> np.ndarray:
    """``H x W x C`` view of a square crop (no copy)."""
    return image[top : top + size, left : left + size]


def dihedral(tensor: torch.Tensor, index: int) -> torch.Tensor:
    """One of the 8 flips/rotations of a ``... x H x W`` tensor (index 0 is the identity)."""
    if index >= 4:
        tensor = tensor.flip(-1)
    return torch.rot90(tensor, index % 4, dims=(-2, -1))


def dihedral_view(image: np.ndarray, index: int) -> np.ndarray:
    """:func:`dihedral` for an ``H x W x C`` array, as a view (no copy): the same 8 transforms."""
    if index >= 4:
        image = image[:, ::-1]
    return np.rot90(image, index % 4, axes=(0, 1))


def random_dihedral(*tensors: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
    """Apply the same random flip/rot90 to all tensors, keeping them aligned."""
    index = int(torch.randint(0, 8, (), generator=generator))
    return tuple(dihedral(t, index).contiguous() for t in tensors)


def inverse_dihedral(tensor: torch.Tensor, index: int) -> torch.Tensor:
    """Undo :func:`dihedral`: ``inverse_dihedral(dihedral(x, k), k) == x``."""
    tensor = torch.rot90(tensor, -(index % 4), dims=(-2, -1))
    return tensor.flip(-1) if index >= 4 else tensor
