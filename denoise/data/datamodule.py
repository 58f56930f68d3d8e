"""The LightningDataModule family: one base owns batching, workers and samplers; each subclass only says
which datasets make the train, val and test splits.

Every batch is a dict with ``noisy`` and ``clean`` (``B x C x H x W`` floats in [0, 1]) and ``name``.
Validation and test run whole images at batch size 1 by default (sizes differ); under DDP they use a
sampler that never repeats an image, so a 2-process test scores exactly the images a 1-process test does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset

from denoise.data.noise import build_noise
from denoise.data.synthetic import NoisyImages, RandomPatches, load_images, resolve_files


class DenoiseDataModule(L.LightningDataModule):
    """Base of every dataset's module: subclasses implement :meth:`build_split`."""

    def __init__(
        self,
        batch_size: int = 16,
        eval_batch_size: int = 1,
        num_workers: int = 0,
        pin_memory: bool = False,
        channels: int = 3,
        grayscale: bool = False,
    ) -> None:
        super().__init__()
        expected = 1 if grayscale else 3
        if channels != expected:
            raise ValueError(f"data.channels={channels} contradicts data.grayscale={grayscale} (expected {expected})")
        if batch_size < 1 or eval_batch_size < 1:
            raise ValueError(
                f"data.batch_size and data.eval_batch_size must be >= 1, got {batch_size}, {eval_batch_size}"
            )
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.channels, self.grayscale = channels, grayscale
        self.datasets: dict[str, Dataset] = {}

    def build_split(self, split: str) -> Dataset:
        """Return the dataset of ``split`` (train, val or test)."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}
        for split in wanted.get(stage, ("train", "val", "test")) if stage else ("train", "val", "test"):
            if split not in self.datasets:
                self.datasets[split] = self.build_split(split)

    def dataset(self, split: str) -> Dataset:
        if split not in self.datasets:
            self.datasets[split] = self.build_split(split)
        return self.datasets[split]

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        dataset = self.dataset(split)
        sampler = None
        if split != "train" and torch.distributed.is_available() and torch.distributed.is_initialized():
            sampler = UnrepeatedDistributedSampler(dataset, shuffle=False)
        workers = self.num_workers
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
            num_workers=workers,
            pin_memory=self.pin_memory,
            persistent_workers=workers > 0 and split == "train",
            drop_last=split == "train",
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size, shuffle=False)


class SyntheticDataModule(DenoiseDataModule):
    """Clean photos plus synthetic noise: scikit-image's embedded photos by default, or the user's folders."""

    def __init__(
        self,
        noise: Mapping[str, Any],
        train_dirs: Sequence[str] | None = None,
        val_dirs: Sequence[str] | None = None,
        test_dirs: Sequence[str] | None = None,
        patch_size: int = 48,
        samples_per_epoch: int = 2240,
        augment: bool = True,
        fixed_patches: bool = False,
        seed: int = 0,
        **base: Any,
    ) -> None:
        super().__init__(**base)
        self.noise_config = dict(noise)
        self.noise = build_noise(**self.noise_config)
        self.dirs = {"train": train_dirs, "val": val_dirs, "test": test_dirs}
        self.patch_size, self.samples_per_epoch = patch_size, samples_per_epoch
        self.augment, self.fixed_patches, self.seed = augment, fixed_patches, seed

    def build_split(self, split: str) -> Dataset:
        files = resolve_files(self.dirs[split], split)
        images = load_images(files, self.channels)
        names = [f.name for f in files]
        if split == "train":
            fixed_seed = self.seed if self.fixed_patches else None
            return RandomPatches(
                images, names, self.noise, self.patch_size, self.samples_per_epoch, self.augment, fixed_seed
            )
        return NoisyImages(images, names, self.noise, seed=self.seed)
