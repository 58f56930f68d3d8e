"""The LightningDataModule family: one base owns batching, workers and samplers; each subclass only says
which datasets make the train, val and test splits.

Every batch is a dict with ``noisy`` and ``clean`` (``B x C x H x W`` floats in [0, 1]) and ``name``.
Validation and test run whole images at batch size 1 by default (sizes differ). Under DDP the evaluation
set is padded to a multiple of the world size with repeats that carry ``weight`` 0: every rank runs the
same number of steps (no rank waits forever in a collective) and every real image counts exactly once, so
a 2-process test scores exactly what a 1-process test does.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from denoise.data.files import files_fingerprint
from denoise.data.io import ImageReadError, verify_image
from denoise.data.layout import Benchmark
from denoise.data.noise import NoiseModel
from denoise.data.pairs import PairSample
from denoise.data.sampling import EpochSampler, LazyStartLoader, PaddedToWorld, available_cores, distributed_world
from denoise.data.transforms import CentreCropped, augment_batch

#: ``data.num_workers: auto`` on a GPU: one loader process per core a device has, less one, at most this many
MAX_AUTO_WORKERS = 8
#: how many problems the input check lists before it says "and N more"
LISTED_PROBLEMS = 30


class InputCheckError(ValueError):
    """The data has problems that would stop training or testing later (every one is listed)."""


def size_or_problem(path, problems: list[str]) -> tuple[int, int] | None:
    """The image's size, checked whole (header, pixel limit, body: :func:`denoise.data.io.verify_image`), or
    None with the problem noted: one bad file never stops the listing of the others."""
    try:
        return verify_image(path)
    except ImageReadError as err:
        problems.append(str(err))
        return None


class DenoiseDataModule(L.LightningDataModule):
    """Base of every dataset's module: subclasses implement :meth:`build_split`, :meth:`input_problems` and the
    pair stream (:meth:`pair_count`, :meth:`iter_pairs`); the rest of the suite uses only these methods."""

    #: ``num_workers: auto`` without a GPU: the main process prepares batches unless decoding is the costly part
    cpu_workers = 0
    #: the synthetic noise model (its settings: ``noise.config()``); None for real noise
    noise: NoiseModel | None = None

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
        allow_changed: bool = False,
        eval_crop: int | None = None,
    ) -> None:
        """``allow_changed``: a resume may use changed training files; ``eval_crop``: val/test score a centre crop."""
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
        self.allow_changed, self.eval_crop = allow_changed, eval_crop
        self._fingerprint: dict[str, Any] | None = None
        # the run's seed (seed_everything ran before the datamodule is built): training samples derive from it
        self.run_seed = torch.initial_seed()
        self._geometric: Any = None
        self.datasets: dict[str, Dataset] = {}

    def build_split(self, split: str) -> Dataset:
        """Return the dataset of ``split`` (train, val or test)."""
        raise NotImplementedError

    #: the batch keys this data can serve for training (``noisy2``: a second, independent noisy view)
    can_serve: frozenset[str] = frozenset({"noisy", "clean"})
    #: what the objective asked for (:meth:`serve`)
    second_noisy = False
    #: batches carry ``noise_level`` (the noise's known standard deviation map), asked for by noise-level-map
    #: networks where the data knows it (synthetic noise); elsewhere the network's level is estimated
    noise_levels = False
    #: whether validation and test batches hold clean targets (scores need them)
    has_clean = True

    def serve(self, needs: frozenset[str] | set[str], objective: str = "the objective") -> None:
        """Be told what the training objective reads (``model.objective``'s ``needs``), before setup: a second
        noisy view is drawn only when asked for, and what this data cannot serve is an error that says which
        objective needs what."""
        missing = sorted(set(needs) - set(self.can_serve) - {"noise_level"})  # a level can be estimated instead
        if missing:
            raise ValueError(self.cannot_serve(missing, objective))
        self.second_noisy = "noisy2" in needs
        self.noise_levels = "noise_level" in needs and "noise_level" in self.can_serve

    def cannot_serve(self, missing: list[str], objective: str) -> str:
        what = {"clean": "clean target images", "noisy2": "a second, independent noisy shot of every scene"}
        needed = " and ".join(what.get(key, key) for key in missing)
        return (
            f"model.objective={objective} needs {needed}, which {type(self).__name__} does not have; "
            "objective=neighbor2neighbor or objective=noise2void learn from single noisy images"
        )

    def training_files(self) -> list[Path]:
        """Every file the train split reads."""
        raise NotImplementedError

    def test_is_validation(self) -> bool:
        """Whether the test scores the validation's images (then its score repeats the best validation score)."""
        return False

    def training_fingerprint(self) -> dict[str, Any]:
        """:func:`denoise.data.files.files_fingerprint` of :meth:`training_files` (taken once): what every checkpoint
        stores of the data (:meth:`state_dict`), so that a resume on changed files is seen."""
        self._fingerprint = self._fingerprint or files_fingerprint(self.training_files())
        return self._fingerprint

    def state_dict(self) -> dict[str, Any]:
        return {"training_data": self.training_fingerprint()}

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

    #: the image-shaped batch entries that augmentation turns and mixes together (those present)
    AUGMENTED = ("noisy", "clean", "noisy2", "noise_level")

    def augment_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """The batch's 8 flips/rotations on the device (``gpu_augment``) and optional mixup: see
        :func:`denoise.data.transforms.augment_batch`."""
        if self.gpu_augment and self._geometric is None:
            import kornia.augmentation as K

            self._geometric = K.AugmentationSequential(K.RandomHorizontalFlip(), K.RandomVerticalFlip())
        return augment_batch(batch, self.AUGMENTED, self._geometric if self.gpu_augment else None, self.mixup_alpha)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        batch = self.float_batch(batch)  # on the device: 4x less to copy than float
        trainer = getattr(self, "trainer", None)
        if trainer is not None and trainer.training and (self.gpu_augment or self.mixup_alpha > 0):
            return self.augment_batch(batch)
        return batch

    def setup(self, stage: str | None = None) -> None:
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}
        for split in wanted.get(stage or "", ("train", "val", "test")):
            self.dataset(split)

    def dataset(self, split: str) -> Dataset:
        if split not in self.datasets:
            built, crop = self.build_split(split), self.eval_crop if split != "train" else None
            self.datasets[split] = CentreCropped(built, crop) if crop else built
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
        distributed = distributed_world()
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
