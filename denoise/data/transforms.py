"""The geometric primitives every path shares: aligned square crops and the 8 flips/rotations (the dihedral
group) with their inverses, for tensors and, as views, for arrays.

One definition serves training augmentation (a random transform of every image of a sample), the patch
store (views, no copy), the on-device batches (the same 8 transforms folded into indices) and the x8
self-ensemble at test time (each transform undone by :func:`inverse_dihedral`), as KAIR's ``augment_img``
serves both its training and its x8 testing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

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


def augment_batch(batch: dict[str, Any], keys: Sequence[str], geometric: Callable[[torch.Tensor], torch.Tensor] | None,
                  mixup_alpha: float) -> dict[str, Any]:  # fmt: skip
    """All 8 flips/rotations of a batch on its device, identical for every image of a sample (``keys``: noisy,
    clean, a second noisy shot, a noise-level map, those present; stacked along the channels and transformed as
    one tensor): ``geometric``'s random flips (kornia's; None: none here) plus a random transpose of square
    patches (rot90 = transpose + flip, exact, where kornia's rotation interpolates); then optional mixup of pairs
    within the batch (a level map mixes as the standard deviation of the mixed independent noises)."""
    keys = [key for key in keys if torch.is_tensor(batch.get(key))]
    images = [batch[key] for key in keys]
    if geometric is not None:
        stacked = geometric(torch.cat(images, dim=1))
        if stacked.shape[-1] == stacked.shape[-2]:
            transpose = torch.rand(stacked.shape[0], 1, 1, 1, device=stacked.device) < 0.5
            stacked = torch.where(transpose, stacked.transpose(-1, -2), stacked)
        images = list(stacked.split([image.shape[1] for image in images], dim=1))
    if mixup_alpha > 0:
        beta = torch.distributions.Beta(mixup_alpha, mixup_alpha)
        lam = beta.sample((images[0].shape[0], 1, 1, 1)).to(images[0])
        order = torch.randperm(images[0].shape[0], device=images[0].device)
        images = [
            (lam**2 * image**2 + (1 - lam) ** 2 * image[order] ** 2).sqrt() if key == "noise_level"
            else lam * image + (1 - lam) * image[order]
            for key, image in zip(keys, images, strict=True)
        ]  # fmt: skip
    return {**batch, **{key: image.contiguous() for key, image in zip(keys, images, strict=True)}}


class CentreCropped(Dataset):
    """A validation/test dataset whose images (``C x H x W`` tensors: noisy, clean, a second shot, a level map) are
    cut to their central ``side x side`` square, all alike."""

    def __init__(self, dataset: Dataset, side: int) -> None:
        if side < 1:
            raise ValueError(f"data.eval_crop={side}: expected a side in pixels >= 1, or null for whole images")
        self.inner, self.side = dataset, side

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = dict(self.inner[index])
        for key, value in sample.items():
            if isinstance(value, torch.Tensor) and value.ndim == 3:
                height, width = value.shape[-2:]
                top, left = max(0, (height - self.side) // 2), max(0, (width - self.side) // 2)
                sample[key] = value[..., top : top + self.side, left : left + self.side]
        return sample
