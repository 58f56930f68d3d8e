"""The DataModule of clean images with synthetic noise: scikit-image's embedded photos or the user's folders,
drawn on the CPU or, with ``data.on_device``, on the accelerator."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from denoise.data.datamodule_base import DenoiseDataModule, size_or_problem
from denoise.data.io import read_raw, to_channels
from denoise.data.noise import NoiseModel
from denoise.data.pairs import PairSample
from denoise.data.sampling import LazyStartLoader, mixed_seed
from denoise.data.synthetic import (
    DevicePatches,
    DrawTickets,
    NoisyImages,
    RandomPatches,
    load_images,
    resolve_files,
)


class SyntheticDataModule(DenoiseDataModule):
    """Clean photos plus synthetic noise: scikit-image's embedded photos by default, or the user's folders."""

    #: a second noise draw of the same crop; the noise's known level (for noise-level-map networks)
    can_serve = frozenset({"noisy", "clean", "noisy2", "noise_level"})

    def __init__(
        self,
        noise: NoiseModel,
        train_dirs: Sequence[str] | None = None,
        val_dirs: Sequence[str] | None = None,
        test_dirs: Sequence[str] | None = None,
        patch_size: int = 48,
        samples_per_epoch: int = 2240,
        augment: bool = True,
        fixed_patches: bool = False,
        seed: int = 0,
        on_device: bool = False,
        **base: Any,
    ) -> None:
        """``on_device``: training batches are drawn on the accelerator (:class:`DevicePatches`): the clean images
        stay in its memory and no loader process is needed."""
        super().__init__(**base)
        if not hasattr(noise, "draw_batch"):
            raise TypeError(
                f"data.noise is a {type(noise).__name__} ({noise!r}); expected a noise model: a config of conf/noise/ "
                "(its _target_ names the class, e.g. denoise.data.noise.GaussianNoise) or the object itself"
            )
        self.noise = noise
        self.dirs = {"train": train_dirs, "val": val_dirs, "test": test_dirs}
        self.patch_size, self.samples_per_epoch = patch_size, samples_per_epoch
        self.augment, self.fixed_patches, self.seed = augment, fixed_patches, seed
        if on_device and fixed_patches:
            raise ValueError("data.on_device=true draws new crops every step: set data.fixed_patches=false")
        if on_device and self.gpu_augment:
            raise ValueError("data.on_device=true flips and rotates on the device already: set data.gpu_augment=false")
        self.on_device = on_device
        self._device_patches: DevicePatches | None = None
        self._generator: torch.Generator | None = None

    @property
    def noise_sigma(self) -> float | None:
        """Fixed-level Gaussian noise has a known sigma; a blind range or Poisson-Gaussian noise has not."""
        return self.noise.known_sigma()

    def training_files(self) -> list[Path]:
        return resolve_files(self.dirs["train"], "train")

    def test_is_validation(self) -> bool:
        validation = {path.resolve() for path in resolve_files(self.dirs["val"], "val")}
        return bool(validation & {path.resolve() for path in resolve_files(self.dirs["test"], "test")})

    def input_problems(self, split: str) -> list[str]:
        problems: list[str] = []
        for path in resolve_files(self.dirs[split], split, problems):
            size = size_or_problem(path, problems)
            if size is not None and split == "train" and min(size) < self.patch_size:
                problems.append(f"{path} is {size[0]}x{size[1]}, smaller than data.patch_size={self.patch_size}")
        return problems

    def build_split(self, split: str) -> Dataset:
        files = resolve_files(self.dirs[split], split)
        images = load_images(files, self.channels)
        names = [f.name for f in files]
        if split == "train":
            return RandomPatches(
                images, names, self.noise, self.patch_size, self.samples_per_epoch, self.augment,
                seed=self.run_seed, fixed=self.fixed_patches, second_noisy=self.second_noisy,
                noise_levels=self.noise_levels,
            )  # fmt: skip
        return NoisyImages(images, names, self.noise, seed=self.seed, noise_levels=self.noise_levels)

    def pair_count(self) -> int:
        return sum(len(resolve_files(self.dirs[split], split)) for split in ("train", "val", "test"))

    def iter_pairs(self) -> Iterator[PairSample]:
        """Every image of every split with the noise a run draws for it (its fixed per-image seed)."""
        for split in ("train", "val", "test"):
            for path in resolve_files(self.dirs[split], split):
                image = to_channels(read_raw(path), self.channels, path)
                item = NoisyImages([image], [path.name], self.noise, seed=self.seed)[0]
                noisy, clean = (item[key].permute(1, 2, 0).numpy() for key in ("noisy", "clean"))
                yield PairSample(f"{split}/{path.name}", "synthetic", noisy, clean, {"split": split})

    # -- data.on_device ----------------------------------------------------------------------------------------
    def train_dataloader(self) -> DataLoader:
        if not self.on_device:
            return super().train_dataloader()
        if self._device_patches is None:
            files = resolve_files(self.dirs["train"], "train")
            images = load_images(files, self.channels)
            self._device_patches = DevicePatches(images, self.noise, self.patch_size, self.augment)
        trainer = getattr(self, "trainer", None)
        world = int(getattr(trainer, "world_size", 1) or 1) if trainer is not None else 1
        steps = self.samples_per_epoch // (self.batch_size * world)  # each rank draws its share, as DDP shards
        if steps < 1:
            raise ValueError(
                f"data.samples_per_epoch={self.samples_per_epoch} is less than one batch of data.batch_size="
                f"{self.batch_size} per device ({world} devices)"
            )
        return LazyStartLoader(DrawTickets(steps, lambda: self.batches_done(steps)), batch_size=None)

    def draw_batch(self, device: torch.device, epoch: int = 0, index: int = 0) -> dict[str, torch.Tensor]:
        """Training batch ``index`` of ``epoch``, drawn on ``device`` (``data.on_device``; the loader yields only
        tickets). Its generator is seeded by the run's seed, the rank, the epoch and the index, so the batch is
        the same whenever it is drawn: after a resume too."""
        if self._device_patches is None:
            self.train_dataloader()
        assert self._device_patches is not None
        trainer = getattr(self, "trainer", None)
        rank = int(getattr(trainer, "global_rank", 0) or 0) if trainer is not None else 0
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device)
        self._generator.manual_seed(mixed_seed(self.run_seed, rank, epoch, index))
        batch = self._device_patches.draw(
            self.batch_size, device, self._generator, self.second_noisy, self.noise_levels
        )
        return self.augment_batch(batch) if self.mixup_alpha > 0 else batch

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if isinstance(batch, dict) and "draw" in batch:
            return self.draw_batch(self.trainer.strategy.root_device, self.trainer.current_epoch, int(batch["draw"]))
        return super().on_after_batch_transfer(batch, dataloader_idx)
