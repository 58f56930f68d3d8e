"""A folder of noisy images with no clean twins (a phone's low-light shots, microscopy, old scans): the data of
the self-supervised objectives. Training crops the noisy images; validation and test run them whole, scored by
what can be measured without ground truth (the noise level left in the output)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from denoise.data.io import array2tensor, list_images, read_raw, to_channels
from denoise.data.sampling import sample_generator
from denoise.data.transforms import random_patch


def held_out(files: Sequence[Path], val_fraction: float, test_fraction: float) -> dict[str, list[Path]]:
    """Every k-th file (in name order) for val and for test, the rest for training: the same split on any machine."""
    files = sorted(files)
    splits: dict[str, list[Path]] = {"train": [], "val": [], "test": []}
    val_every = round(1 / val_fraction) if val_fraction > 0 else 0
    test_every = round(1 / test_fraction) if test_fraction > 0 else 0
    for index, path in enumerate(files):
        if test_every and index % test_every == test_every - 1:
            splits["test"].append(path)
        elif val_every and index % val_every == 0:
            splits["val"].append(path)
        else:
            splits["train"].append(path)
    return splits


#: the residual of Immerkaer's noise estimator ("Fast noise variance estimation", 1996): zero on any plane
_LAPLACE_DIFFERENCE = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
#: blocks the image is cut into; the estimate is a low quantile of theirs: the flattest regions show the noise
#: alone, where edges and texture (grass, fur) make a whole-image estimate of a clean photo several units high
FLAT_BLOCK, FLAT_QUANTILE = 16, 0.1


def estimated_noise(image: np.ndarray) -> float:
    """The noise standard deviation of an ``H x W x C`` uint8/uint16 image on the 0-255 scale, measured in its
    flattest regions: Immerkaer's residual averaged over 16x16 blocks, the 10th percentile of the blocks (blocks
    with clipped pixels left out, where noise is cut off), over the central 512x512 region at most.

    Measured on clean test sets (folder medians): Set12 1.47, BSD68 0.47, CBSD68 0.59, Kodak24 1.37, McMaster
    1.05, SIDD's clean references 0.52; on noisy ones: SIDD's real noisy photos 6.14, Gaussian noise of sigma 3
    2.96 and sigma 5 4.76 (``python bench/noise_estimate.py``). A whole-image wavelet estimate put every clean set
    above 1.7, and the old threshold of 1.0 let them all through."""
    from scipy.signal import convolve2d

    height, width = image.shape[:2]
    top, left = max(0, (height - 512) // 2), max(0, (width - 512) // 2)
    region = image[top : top + 512, left : left + 512].astype(np.float64)
    region *= 255.0 / (255.0 if image.dtype == np.uint8 else 65535.0)
    estimates = []
    for channel in range(region.shape[2]):
        plane = region[..., channel]
        residual = np.abs(convolve2d(plane, _LAPLACE_DIFFERENCE, mode="valid"))
        rows, cols = residual.shape[0] // FLAT_BLOCK * FLAT_BLOCK, residual.shape[1] // FLAT_BLOCK * FLAT_BLOCK
        if rows == 0 or cols == 0:  # smaller than a block: the whole residual
            estimates.append(float(residual.mean()) * np.sqrt(np.pi / 2) / 6)
            continue
        shape = (rows // FLAT_BLOCK, FLAT_BLOCK, cols // FLAT_BLOCK, FLAT_BLOCK)
        blocks = residual[:rows, :cols].reshape(shape).mean(axis=(1, 3)) * np.sqrt(np.pi / 2) / 6
        pixels = plane[1 : 1 + rows, 1 : 1 + cols].reshape(shape)
        clipped = ((pixels <= 0.5) | (pixels >= 254.5)).mean(axis=(1, 3))
        usable = blocks[clipped < 0.05]
        estimates.append(float(np.quantile(usable if usable.size else blocks, FLAT_QUANTILE)))
    return float(np.mean(estimates))


class NoisyCrops(Dataset):
    """Training samples of a noisy folder: an image (uniformly), an aligned random crop, a flip/rot90; each from
    its own generator (the run's seed and the global sample number), like every training dataset here."""

    def __init__(
        self,
        images: Sequence[np.ndarray],
        names: Sequence[str],
        patch_size: int,
        samples_per_epoch: int,
        augment: bool = True,
        seed: int = 0,
    ) -> None:
        self.images, self.names, self.patch_size = list(images), list(names), patch_size
        self.samples_per_epoch, self.augment, self.seed = samples_per_epoch, augment, seed

    def __len__(self) -> int:
        return self.samples_per_epoch

    def __getitem__(self, index: int) -> dict[str, Any]:
        generator = sample_generator(self.seed, index)
        pick, noisy = random_patch(self.images, self.patch_size, self.augment, generator)
        return {"noisy": noisy, "name": self.names[pick]}


class NoisyOnly(Dataset):
    """Whole noisy images, for validation and test without ground truth."""

    def __init__(self, images: Sequence[np.ndarray], names: Sequence[str]) -> None:
        self.images, self.names = list(images), list(names)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"noisy": array2tensor(self.images[index]), "name": self.names[index]}


def load_noisy(files: Sequence[Path], channels: int) -> list[np.ndarray]:
    return [to_channels(read_raw(path), channels, path) for path in files]


def folder_files(noisy_dir: str | Path) -> list[Path]:
    return list_images(noisy_dir, key="data.noisy_dir")
