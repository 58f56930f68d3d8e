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
