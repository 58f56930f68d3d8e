"""The LightningDataModule family: one base owns batching, workers and samplers; each subclass only says
which datasets make the train, val and test splits.

Every batch is a dict with ``noisy`` and ``clean`` (``B x C x H x W`` floats in [0, 1]) and ``name``.
Validation and test run whole images at batch size 1 by default (sizes differ). Under DDP the evaluation
set is padded to a multiple of the world size with repeats that carry ``weight`` 0: every rank runs the
same number of steps (no rank waits forever in a collective) and every real image counts exactly once, so
a 2-process test scores exactly what a 1-process test does.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from denoise.data.cache import PatchStore, StorePatches
from denoise.data.io import ImageReadError, image_size, list_images, read_raw, to_channels
from denoise.data.layout import Benchmark, Layout
from denoise.data.noise import GaussianNoise, build_noise
from denoise.data.pairs import BlockImages, ImagePair, PairImages, PairPatches, PairSample, load_pair, unique_pairs
from denoise.data.sampling import EpochSampler, LazyStartLoader, mixed_seed
from denoise.data.synthetic import (
    DevicePatches,
    DrawTickets,
    NoisyImages,
    RandomPatches,
    embedded_files,
    load_images,
    resolve_files,
)

#: ``data.num_workers: auto`` on a GPU: one loader process per core a device has, less one, at most this many
MAX_AUTO_WORKERS = 8
#: how many problems the input check lists before it says "and N more"
LISTED_PROBLEMS = 30


class InputCheckError(ValueError):
    """The data has problems that would stop training or testing later (every one is listed)."""


def _folder_files(dirs: Sequence[str] | str | None, split: str, problems: list[str]) -> list:
    """The image files of ``data.<split>_dirs`` (the embedded photos when None); a missing or empty folder is
    noted in ``problems`` and the others are still listed."""
    if dirs is None:
        try:
            return embedded_files(split)
        except FileNotFoundError as err:
            problems.append(str(err))
            return []
    files = []
    for i, folder in enumerate([dirs] if isinstance(dirs, str) else dirs):
        try:
            files += list_images(folder, key=f"data.{split}_dirs[{i}]")
        except (FileNotFoundError, NotADirectoryError) as err:
            problems.append(str(err))
    return files


def _size_or_problem(path, problems: list[str]) -> tuple[int, int] | None:
    try:
        return image_size(path)
    except ImageReadError as err:
        problems.append(str(err))
        return None


def available_cores() -> int:
    """The cores this process may run on (the SLURM/cgroup allotment, not the whole machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


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
    """Base of every dataset's module: subclasses implement :meth:`build_split`, :meth:`input_problems` and the
    pair stream (:meth:`pair_count`, :meth:`iter_pairs`); the rest of the suite uses only these methods."""

    #: ``num_workers: auto`` without a GPU: the main process prepares batches unless decoding is the costly part
    cpu_workers = 0
    #: the synthetic noise as configured (levels on the 0-255 scale); None for real noise
    noise_config: dict[str, Any] | None = None

    def __init__(
        self,
        batch_size: int = 16,
        eval_batch_size: int = 1,
        num_workers: int | str = "auto",
        pin_memory: bool | str = "auto",
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
        if not (num_workers == "auto" or (isinstance(num_workers, int) and num_workers >= 0)):
            raise ValueError(f"data.num_workers={num_workers!r}: expected auto or a number >= 0")
        if pin_memory not in ("auto", True, False):
            raise ValueError(f"data.pin_memory={pin_memory!r}: expected auto, true or false")
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.channels, self.grayscale = channels, grayscale
        self.gpu_augment, self.mixup_alpha = gpu_augment, mixup_alpha
        # the run's seed (seed_everything ran before the datamodule is built): training samples derive from it
        self.run_seed = torch.initial_seed()
        self._geometric: Any = None
        self.datasets: dict[str, Dataset] = {}

    def build_split(self, split: str) -> Dataset:
        """Return the dataset of ``split`` (train, val or test)."""
        raise NotImplementedError

    def input_problems(self, split: str) -> list[str]:
        """Everything wrong with ``split``'s inputs that can be seen without training: missing folders, files
        whose header cannot be read, pairs without partners or of different sizes, images smaller than a crop.
        Subclasses say what their split needs; the base has nothing to check."""
        return []

    def check_inputs(self, splits: Sequence[str] = ("train", "val", "test")) -> None:
        """Fail before the first training step, listing every problem of every split at once (at most
        :data:`LISTED_PROBLEMS` lines), rather than after an hour of training or one file at a time."""
        found: dict[str, list[str]] = {}  # a problem shared by splits (one bad folder) is listed once
        for split in splits:
            for problem in dict.fromkeys(self.input_problems(split)):
                found.setdefault(problem, []).append(split)
        problems = [f"[{', '.join(where)}] {problem}" for problem, where in found.items()]
        if problems:
            more = f"\n  ... and {len(problems) - LISTED_PROBLEMS} more" if len(problems) > LISTED_PROBLEMS else ""
            raise InputCheckError(
                f"{len(problems)} problem(s) in the data, found before training:\n  "
                + "\n  ".join(problems[:LISTED_PROBLEMS])
                + more
            )

    def _device_type(self) -> str:
        trainer = getattr(self, "trainer", None)
        return trainer.strategy.root_device.type if trainer is not None else "cpu"

    def loader_workers(self, device_type: str | None = None) -> int:
        """``data.num_workers``, with ``auto`` resolved: on a CUDA device, the cores each device's process has,
        less one for the process itself (at most 8); elsewhere :attr:`cpu_workers`."""
        if self.num_workers != "auto":
            return int(self.num_workers)
        if (device_type or self._device_type()) != "cuda":
            return self.cpu_workers
        trainer = getattr(self, "trainer", None)
        processes_here = max(1, int(getattr(trainer, "num_devices", 1) or 1)) if trainer is not None else 1
        return max(1, min(MAX_AUTO_WORKERS, available_cores() // processes_here - 1))

    def loader_pin_memory(self, device_type: str | None = None) -> bool:
        """``data.pin_memory``, with ``auto`` meaning: on a CUDA device (faster, asynchronous copies)."""
        if self.pin_memory == "auto":
            return (device_type or self._device_type()) == "cuda"
        return bool(self.pin_memory)

    @property
    def noise_sigma(self) -> float | None:
        """The test noise's standard deviation on the [0, 1] scale when it is known and fixed, for the filters
        that take a noise level; None (estimate it) for real noise."""
        return None

    # -- what the rest of the suite asks of any dataset -------------------------------------------------------
    def pair_count(self) -> int:
        """How many pairs :meth:`iter_pairs` yields, without decoding any."""
        raise NotImplementedError

    def iter_pairs(self) -> Iterator[PairSample]:
        """Every pair of every split once, decoded one at a time (for the EDA)."""
        raise NotImplementedError

    def benchmarks(self) -> dict[str, Benchmark]:
        """The datasets with an official benchmark to write submission files for (none by default)."""
        return {}

    def evaluation_batches(self, split: str = "test", device_type: str = "cpu") -> tuple[int, Iterator[dict]]:
        """``split``'s images one at a time, as float batches ready for any method: the count and the batches
        (evaluate.py scores every filter and network on them)."""
        dataset = self.dataset(split)
        loader = DataLoader(dataset, batch_size=1, num_workers=self.loader_workers(device_type))
        return len(dataset), (self.float_batch(batch) for batch in loader)

    @staticmethod
    def float_batch(batch: Any) -> Any:
        """uint8 samples (the patch store) become float in [0, 1]; the rest is left as it is."""
        if isinstance(batch, dict):
            return {k: v.float() / 255.0 if torch.is_tensor(v) and v.dtype == torch.uint8 else v
                    for k, v in batch.items()}  # fmt: skip
        return batch

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
        batch = self.float_batch(batch)  # on the device: 4x less to copy than float
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

    def batches_done(self, batches_per_epoch: int) -> int:
        """How many batches of the epoch now starting already trained: non-zero only when a run resumes from a
        checkpoint taken mid-epoch (Lightning has restored the count by the time the first batch is asked for;
        ``processed`` also counts a batch whose end hook saved the checkpoint)."""
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        return done if 0 < done < batches_per_epoch else 0

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        dataset = self.dataset(split)
        sampler: Any = None
        distributed = _distributed()
        world, rank = distributed if distributed is not None else (1, 0)
        if split == "train":
            # global sample numbers, this rank's share, resumable mid-epoch (denoise/data/sampling.py)
            sampler = EpochSampler(
                len(dataset),
                batch_size,
                self.run_seed,
                num_replicas=world,
                rank=rank,
                shuffle=getattr(dataset, "picks_by_position", False),
            )
            per_epoch = len(sampler) // batch_size
            sampler.batches_done = lambda: self.batches_done(per_epoch)
        elif world > 1:
            dataset = PaddedToWorld(dataset, world)
            sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=False)
        workers = self.loader_workers()
        return (LazyStartLoader if split == "train" else DataLoader)(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
            num_workers=workers,
            pin_memory=self.loader_pin_memory(),
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
        on_device: bool = False,
        **base: Any,
    ) -> None:
        """``on_device``: training batches are drawn on the accelerator (:class:`DevicePatches`): the clean images
        stay in its memory and no loader process is needed."""
        super().__init__(**base)
        self.noise_config = dict(noise)
        self.noise = build_noise(**self.noise_config)
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
        if isinstance(self.noise, GaussianNoise) and self.noise.sigma[0] == self.noise.sigma[1]:
            return self.noise.sigma[0] / 255.0
        return None

    def input_problems(self, split: str) -> list[str]:
        problems: list[str] = []
        for path in _folder_files(self.dirs[split], split, problems):
            size = _size_or_problem(path, problems)
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
                seed=self.run_seed, fixed=self.fixed_patches,
            )  # fmt: skip
        return NoisyImages(images, names, self.noise, seed=self.seed)

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
        batch = self._device_patches.draw(self.batch_size, device, self._generator)
        return self.augment_batch(batch) if self.mixup_alpha > 0 else batch

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if isinstance(batch, dict) and "draw" in batch:
            return self.draw_batch(self.trainer.strategy.root_device, self.trainer.current_epoch, int(batch["draw"]))
        return super().on_after_batch_transfer(batch, dataloader_idx)


class PairedDataModule(DenoiseDataModule):
    """Real noisy/clean pairs from one or more dataset layouts (``datasets``: name -> layout object).

    Each layout (SIDD, RENOIR, NIND, a folder of pairs) says which pairs make its train/val/test splits and
    may offer fixed evaluation blocks (SIDD's validation .mat). Training draws a dataset by its weight in
    ``weights`` (default: equal), then one of its pairs; every batch carries each sample's ``dataset``.
    """

    cpu_workers = 2  # decoding photos is the slow part of a real-pair batch

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
        self.layouts: dict[str, Layout] = dict(datasets)
        for name, layout in self.layouts.items():
            if not isinstance(layout, Layout):
                raise TypeError(
                    f"data.datasets.{name} is a {type(layout).__name__}, not a dataset layout: expected an object with "
                    "a name, splits() and blocks(split) (denoise/data/layout.py)"
                )
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

    def input_problems(self, split: str) -> list[str]:
        problems: list[str] = []
        source = "val" if split == "test" and self.test_is_val else split
        cropping = split == "train" and self.resize is None and not self.store.get("enabled", False)
        for name, layout in self.layouts.items():
            try:
                pairs = layout.splits()[source]
            except (FileNotFoundError, NotADirectoryError, ValueError) as err:
                problems.append(f"{name}: {err}")
                continue
            for pair in pairs:
                sizes = [_size_or_problem(path, problems) for path in (pair.noisy, *pair.clean)]
                if None in sizes:
                    continue
                paths = (pair.noisy, *pair.clean)
                files = ", ".join(f"{path} is {h}x{w}" for path, (h, w) in zip(paths, sizes, strict=True))
                if len(set(sizes)) > 1 and not pair.crop_to_common:
                    problems.append(f"pair {pair.name}: the images differ in size ({files})")
                if cropping and min(min(size) for size in sizes) < self.patch_size:
                    problems.append(f"pair {pair.name} ({files}) is smaller than data.patch_size={self.patch_size}")
        return problems

    def pair_count(self) -> int:
        return sum(len(unique_pairs(layout.splits())) for layout in self.layouts.values())

    def iter_pairs(self) -> Iterator[PairSample]:
        """Every pair of every layout once, as its layout names it, with its metadata."""
        for name, layout in self.layouts.items():
            for pair in unique_pairs(layout.splits()):
                noisy, clean = load_pair(pair, self.channels, self.resize)
                yield PairSample(pair.name, name, noisy, clean, dict(pair.meta))

    def benchmarks(self) -> dict[str, Benchmark]:
        return {name: layout for name, layout in self.layouts.items() if isinstance(layout, Benchmark)}

    def split_pairs(self, split: str) -> dict[str, list[ImagePair]]:
        return {name: layout.splits()[split] for name, layout in self.layouts.items()}

    def build_split(self, split: str) -> Dataset:
        if split == "test" and self.test_is_val:
            split = "val"
        if split == "train" and self.store.get("enabled", False):
            stores = self.patch_stores(progress=False)
            return StorePatches(list(stores.values()), [self.weights[name] for name in stores], self.patch_size,
                                self.samples_per_epoch, self.augment, seed=self.run_seed)  # fmt: skip
        if split == "train":
            pairs, weights = [], []
            for name, members in self.split_pairs("train").items():
                pairs += members
                weights += [self.weights[name] / len(members)] * len(members)
            if not pairs:
                raise ValueError(f"no training pairs in {sorted(self.layouts)}: every pair was held out")
            return PairPatches(pairs, self.channels, self.patch_size, self.samples_per_epoch, self.augment, weights,
                               resize=self.resize, seed=self.run_seed)  # fmt: skip
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
