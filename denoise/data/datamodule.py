"""The LightningDataModule family: one base owns batching, workers and samplers; each subclass only says
which datasets make the train, val and test splits.

Every batch is a dict with ``noisy`` and ``clean`` (``B x C x H x W`` floats in [0, 1]) and ``name``.
Validation and test run whole images at batch size 1 by default (sizes differ). Under DDP the evaluation
set is padded to a multiple of the world size with repeats that carry ``weight`` 0: every rank runs the
same number of steps (no rank waits forever in a collective) and every real image counts exactly once, so
a 2-process test scores exactly what a 1-process test does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from denoise.data.cache import PatchStore, StorePatches
from denoise.data.noise import GaussianNoise, build_noise
from denoise.data.pairs import BlockImages, ImagePair, PairImages, PairPatches
from denoise.data.synthetic import NoisyImages, RandomPatches, load_images, resolve_files


class PaddedToWorld(Dataset):
    """An evaluation set padded to a multiple of ``world_size``; the padding repeats carry weight 0."""

    def __init__(self, dataset: Dataset, world_size: int) -> None:
        self.dataset, self.size = dataset, len(dataset)
        self.total = -(-self.size // world_size) * world_size if self.size else 0

    def __len__(self) -> int:
        return self.total

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = dict(self.dataset[index % self.size])
        sample["weight"] = torch.tensor(1.0 if index < self.size else 0.0)
        return sample


def _distributed() -> tuple[int, int] | None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size(), torch.distributed.get_rank()
    return None


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
        gpu_augment: bool = False,
        mixup_alpha: float = 0.0,
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
        self.gpu_augment, self.mixup_alpha = gpu_augment, mixup_alpha
        self._geometric: Any = None
        self.datasets: dict[str, Dataset] = {}

    def build_split(self, split: str) -> Dataset:
        """Return the dataset of ``split`` (train, val or test)."""
        raise NotImplementedError

    @property
    def noise_sigma(self) -> float | None:
        """The test noise's standard deviation on the [0, 1] scale when it is known and fixed, for the filters
        that take a noise level; None (estimate it) for real noise."""
        return None

    def augment_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """All 8 flips/rotations, identical for noisy and clean (stacked along the channels and transformed as
        one tensor): kornia's random flips plus a random transpose of square patches (rot90 = transpose + flip,
        exact, where kornia's rotation interpolates); then optional mixup of pairs within the batch."""
        noisy, clean = batch["noisy"], batch["clean"]
        if self.gpu_augment:
            if self._geometric is None:
                import kornia.augmentation as K

                self._geometric = K.AugmentationSequential(K.RandomHorizontalFlip(), K.RandomVerticalFlip())
            both = self._geometric(torch.cat((noisy, clean), dim=1))
            if both.shape[-1] == both.shape[-2]:
                transpose = torch.rand(both.shape[0], 1, 1, 1, device=both.device) < 0.5
                both = torch.where(transpose, both.transpose(-1, -2), both)
            noisy, clean = both[:, : noisy.shape[1]], both[:, noisy.shape[1] :]
        if self.mixup_alpha > 0:
            beta = torch.distributions.Beta(self.mixup_alpha, self.mixup_alpha)
            lam = beta.sample((noisy.shape[0], 1, 1, 1)).to(noisy)
            order = torch.randperm(noisy.shape[0], device=noisy.device)
            noisy = lam * noisy + (1 - lam) * noisy[order]
            clean = lam * clean + (1 - lam) * clean[order]
        return {**batch, "noisy": noisy.contiguous(), "clean": clean.contiguous()}

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if isinstance(batch, dict):  # uint8 samples (the patch store) become float in [0, 1] on the device
            batch = {k: v.float() / 255.0 if torch.is_tensor(v) and v.dtype == torch.uint8 else v
                     for k, v in batch.items()}  # fmt: skip
        trainer = getattr(self, "trainer", None)
        if trainer is not None and trainer.training and (self.gpu_augment or self.mixup_alpha > 0):
            return self.augment_batch(batch)
        return batch

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
        distributed = _distributed()
        if split != "train" and distributed is not None and distributed[0] > 1:
            dataset = PaddedToWorld(dataset, distributed[0])
            sampler = DistributedSampler(dataset, num_replicas=distributed[0], rank=distributed[1], shuffle=False)
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

    @property
    def noise_sigma(self) -> float | None:
        """Fixed-level Gaussian noise has a known sigma; a blind range or Poisson-Gaussian noise has not."""
        if isinstance(self.noise, GaussianNoise) and self.noise.sigma[0] == self.noise.sigma[1]:
            return self.noise.sigma[0] / 255.0
        return None

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


class PairedDataModule(DenoiseDataModule):
    """Real noisy/clean pairs from one or more dataset layouts (``datasets``: name -> layout object).

    Each layout (SIDD, RENOIR, NIND, a folder of pairs) says which pairs make its train/val/test splits and
    may offer fixed evaluation blocks (SIDD's validation .mat). Training draws a dataset by its weight in
    ``weights`` (default: equal), then one of its pairs; every batch carries each sample's ``dataset``.
    """

    def __init__(
        self,
        datasets: Mapping[str, Any],
        weights: Mapping[str, float] | None = None,
        patch_size: int = 256,
        samples_per_epoch: int | None = 4000,
        augment: bool = True,
        store: Mapping[str, Any] | None = None,
        resize: int | None = None,
        test_is_val: bool = False,
        **options: Any,
    ) -> None:
        """``store`` (``enabled``, ``size``, ``stride``, ``cache_dir``) turns on the crop-once patch store.
        ``resize``: every photo shrunk whole to ``resize x resize`` (the seed's protocol; no patch store), and
        ``samples_per_epoch=None`` makes an epoch one pass over the training pairs. ``test_is_val``: test on
        the validation pairs (a two-way split, as the seed scored its 20% held-out set).

        Keys named ``root``, ``*_root`` or ``*_dir`` are the user-facing paths (``data.root=...``) that the
        layouts' configs interpolate; they are accepted here so the run's config records them."""
        self.paths = {k: v for k, v in options.items() if k == "root" or k.endswith(("_root", "_dir"))}
        super().__init__(**{k: v for k, v in options.items() if k not in self.paths})
        if not datasets:
            raise ValueError("data.datasets is empty; expected at least one dataset layout")
        self.layouts = dict(datasets)
        unknown = sorted(set(weights or {}) - set(self.layouts))
        if unknown:
            raise ValueError(f"data.weights names {unknown}, which are not in data.datasets {sorted(self.layouts)}")
        self.weights = {name: float((weights or {}).get(name, 1.0)) for name in self.layouts}
        self.patch_size, self.samples_per_epoch, self.augment = patch_size, samples_per_epoch, augment
        self.store = dict(store or {})
        self.resize, self.test_is_val = resize, test_is_val
        if resize is not None and self.store.get("enabled", False):
            raise ValueError(f"data.resize={resize} works on whole photos: set data.store.enabled=false")
        if resize is not None and patch_size > resize:
            raise ValueError(f"data.patch_size={patch_size} is larger than the resized photos (data.resize={resize})")
        if samples_per_epoch is None and self.store.get("enabled", False):
            raise ValueError("data.samples_per_epoch=null (one pass over the pairs) needs data.store.enabled=false")
        self.prepare_data_per_node = True

    def patch_stores(self, progress: bool = True) -> dict[str, PatchStore]:
        """Each dataset's training pairs in its patch store, built on first use."""
        settings = {"size": int(self.store.get("size", 512)), "stride": int(self.store.get("stride", 384))}
        cache_dir = self.store.get("cache_dir") or ".cache/patches"
        return {
            name: PatchStore.build(pairs, cache_dir, name, channels=self.channels, progress=progress, **settings)
            for name, pairs in self.split_pairs("train").items()
            if pairs
        }

    def prepare_data(self) -> None:
        """Build the patch stores once (Lightning calls this on one process per node, before ``setup``)."""
        if self.store.get("enabled", False):
            self.patch_stores()

    @property
    def dataset_names(self) -> list[str]:
        """The datasets whose val/test metrics are also reported one by one (when there are several)."""
        return list(self.layouts) if len(self.layouts) > 1 else []

    def split_pairs(self, split: str) -> dict[str, list[ImagePair]]:
        return {name: layout.splits()[split] for name, layout in self.layouts.items()}

    def build_split(self, split: str) -> Dataset:
        if split == "test" and self.test_is_val:
            split = "val"
        if split == "train" and self.store.get("enabled", False):
            stores = self.patch_stores(progress=False)
            return StorePatches(list(stores.values()), [self.weights[name] for name in stores], self.patch_size,
                                self.samples_per_epoch, self.augment)  # fmt: skip
        if split == "train":
            pairs, weights = [], []
            for name, members in self.split_pairs("train").items():
                pairs += members
                weights += [self.weights[name] / len(members)] * len(members)
            if not pairs:
                raise ValueError(f"no training pairs in {sorted(self.layouts)}: every pair was held out")
            return PairPatches(pairs, self.channels, self.patch_size, self.samples_per_epoch, self.augment, weights,
                               resize=self.resize)  # fmt: skip
        parts: list[Dataset] = []
        for name, layout in self.layouts.items():
            blocks = None if self.resize else layout.blocks(split)
            if blocks is not None:
                noisy, clean, names = blocks
                parts.append(BlockImages(noisy, clean, names, name))
            elif layout.splits()[split]:
                parts.append(PairImages(layout.splits()[split], self.channels, self.resize))
        if not parts:
            raise ValueError(
                f"no {split} data in {sorted(self.layouts)}: hold out some of it (data.datasets.<name>.val_fraction) "
                "or provide the dataset's official evaluation files"
            )
        return parts[0] if len(parts) == 1 else torch.utils.data.ConcatDataset(parts)
