"""The DataModule of a folder of noisy images without clean twins (``data=noisy_folder``), for the
self-supervised objectives (neighbor2neighbor, noise2void)."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from denoise.data.datamodule_base import DenoiseDataModule, size_or_problem
from denoise.data.io import ImageReadError
from denoise.data.noise_estimate import flat_region_sigma
from denoise.data.noisy_folder import NoisyCrops, NoisyOnly, folder_files, held_out, load_noisy
from denoise.data.pairs import PairSample


class NoisyFolderDataModule(DenoiseDataModule):
    """Noisy images only: training crops of them, validation and test on whole held-out images."""

    can_serve = frozenset({"noisy"})
    has_clean = False

    def __init__(
        self,
        noisy_dir: str,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        patch_size: int = 64,
        samples_per_epoch: int = 800,
        augment: bool = True,
        min_noise_sigma: float = 2.5,
        **base: Any,
    ) -> None:
        """``min_noise_sigma`` (0-255 scale): below this median estimated noise level the folder looks clean,
        and is refused rather than taught as noise-free."""
        super().__init__(**base)
        self.noisy_dir, self.val_fraction, self.test_fraction = noisy_dir, val_fraction, test_fraction
        self.patch_size, self.samples_per_epoch, self.augment = patch_size, samples_per_epoch, augment
        self.min_noise_sigma = min_noise_sigma
        self._checked_noise = False

    def files(self) -> dict[str, list]:
        return held_out(folder_files(self.noisy_dir), self.val_fraction, self.test_fraction)

    def training_files(self) -> list[Path]:
        return [Path(path) for path in self.files()["train"]]

    def cannot_serve(self, missing: list[str], objective: str) -> str:
        if "noisy2" in missing:
            return (
                f"model.objective={objective} needs two independent noisy shots of every scene; data.noisy_dir="
                f"{self.noisy_dir} holds one image per scene. Use objective=neighbor2neighbor or noise2void (one "
                "noisy image each), or a dataset with several shots (data=sidd, data=nind, data=renoir)"
            )
        return (
            f"model.objective={objective} needs clean target images; data.noisy_dir={self.noisy_dir} holds only noisy "
            "ones. Use objective=neighbor2neighbor or objective=noise2void"
        )

    def input_problems(self, split: str) -> list[str]:
        try:
            splits = self.files()
        except (FileNotFoundError, NotADirectoryError) as err:
            return [str(err)]
        problems: list[str] = []
        if not splits[split]:
            total = sum(len(files) for files in splits.values())
            problems.append(
                f"data.noisy_dir={self.noisy_dir} holds {total} image(s), which leaves none for {split} (the "
                f"held-out shares are data.val_fraction={self.val_fraction}, data.test_fraction={self.test_fraction}"
                f"); give at least {self.fewest_images()} images"
            )
        images = []
        for path in splits[split]:
            size = size_or_problem(path, problems)
            if size is not None and split == "train" and min(size) < self.patch_size:
                problems.append(f"{path} is {size[0]}x{size[1]}, smaller than data.patch_size={self.patch_size}")
            elif size is not None and split == "train":
                try:
                    images.append(load_noisy([path], self.channels)[0])
                except ImageReadError as err:
                    problems.append(str(err))
        if images:
            try:
                self.check_noise(images)
                self._checked_noise = True
            except ImageReadError as err:
                problems.append(str(err))
        return problems

    def fewest_images(self) -> int:
        """The fewest images that leave at least one for each of train, val and test."""
        for count in range(3, 1001):
            if all(held_out([Path(f"{i:04d}") for i in range(count)], self.val_fraction, self.test_fraction).values()):
                return count
        return 1001

    def _load(self, split: str) -> tuple[list, list[str]]:
        files = self.files()[split]
        if not files:
            raise ValueError(
                f"data.noisy_dir={self.noisy_dir}: no {split} images (data.val_fraction / data.test_fraction hold "
                "some out)"
            )
        return load_noisy(files, self.channels), [f.name for f in files]

    def check_noise(self, images: list) -> None:
        """Refuse a folder of clean images: the objectives would learn to leave them as they are."""
        levels = [flat_region_sigma(image) for image in images]
        level = statistics.median(levels)
        if level < self.min_noise_sigma:
            raise ImageReadError(
                f"data.noisy_dir={self.noisy_dir}: these images look clean (median estimated noise sigma "
                f"{level:.2f}/255 in their flattest regions, below data.min_noise_sigma={self.min_noise_sigma}); the "
                "self-supervised objectives remove noise that is there. Give noisy images, or lower "
                "data.min_noise_sigma if the noise is that faint"
            )

    def build_split(self, split: str) -> Dataset:
        images, names = self._load(split)
        if split == "train":
            if not self._checked_noise:
                self.check_noise(images)
                self._checked_noise = True
            return NoisyCrops(images, names, self.patch_size, self.samples_per_epoch, self.augment, self.run_seed)
        return NoisyOnly(images, names)

    def pair_count(self) -> int:
        return 0

    def iter_pairs(self) -> Iterator[PairSample]:
        raise ValueError("the EDA measures noise against clean images; data=noisy_folder has none")
