"""Training samples as pure functions of (seed, epoch, position), so a run resumed mid-epoch draws exactly the
samples the uninterrupted run would have drawn, bit for bit.

Every training dataset draws its crop, flip and noise from a generator seeded by :func:`sample_generator`
with the *global sample number* it is handed, ``epoch * samples_per_epoch + position``; nothing comes from a
global random state that depends on how many samples came before, on the worker process, or on a restart.
:class:`EpochSampler` hands out those numbers for each rank and, when a run resumes in the middle of an epoch,
starts after the batches that epoch had already trained on (Lightning restores that count from the checkpoint).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler


def mixed_seed(*values: int) -> int:
    """One well-mixed 63-bit seed from several integers (numpy's SeedSequence): nearby inputs give unrelated
    streams."""
    return int(np.random.SeedSequence([int(v) % 2**63 for v in values]).generate_state(1, dtype=np.uint64)[0] >> 1)


def sample_generator(seed: int, index: int) -> torch.Generator:
    """The CPU generator of training sample ``index`` of a run seeded ``seed``."""
    return torch.Generator().manual_seed(mixed_seed(seed, index))


class EpochSampler(DistributedSampler):
    """Global sample numbers ``epoch * length + position`` for this rank's share of one epoch.

    ``shuffle``: positions in a random order of the epoch (seeded by ``seed`` and the epoch) for datasets whose
    position picks an item (one pass over the pairs); datasets that draw at random per sample take them in
    order. ``batches_done`` says how many of this rank's batches of the current epoch already ran (non-zero only
    when a run resumes mid-epoch); those are skipped. A DistributedSampler, so Lightning neither wraps nor
    replaces it under DDP, and calls :meth:`set_epoch` every epoch.
    """

    def __init__(
        self,
        length: int,
        batch_size: int,
        seed: int,
        num_replicas: int = 1,
        rank: int = 0,
        shuffle: bool = False,
        batches_done: Callable[[], int] | None = None,
    ) -> None:
        # no super().__init__: it would ask torch.distributed for the world size; this sampler is told
        self.length, self.batch_size, self.seed = length, batch_size, seed
        self.num_replicas, self.rank, self.shuffle = num_replicas, rank, shuffle
        self.batches_done = batches_done or (lambda: 0)
        self.epoch = 0
        self.per_rank = length // num_replicas  # every rank the same number: no rank waits in a collective

    def __len__(self) -> int:
        return self.per_rank

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def positions(self) -> list[int]:
        """This rank's positions of the current epoch, in order (before any skipping)."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(mixed_seed(self.seed, self.epoch, 0x5EED))
            order = torch.randperm(self.length, generator=generator).tolist()
        else:
            order = list(range(self.length))
        return order[self.rank : self.per_rank * self.num_replicas : self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        skip = min(self.batches_done() * self.batch_size, self.per_rank)
        base = self.epoch * self.length
        return iter([base + position for position in self.positions()[skip:]])


class _StartOnFirstBatch:
    """An iterator that creates the real one when the first batch is asked for."""

    def __init__(self, start: Callable[[], Iterator]) -> None:
        self._start, self._iterator = start, None

    def __iter__(self) -> _StartOnFirstBatch:
        return self

    def __next__(self):
        if self._iterator is None:
            self._iterator = self._start()
        return next(self._iterator)


class LazyStartLoader(DataLoader):
    """A DataLoader whose sampler and workers start with the first batch, not when the iterator is made.

    Lightning makes the training iterator early (to count the steps for the schedule) and, on a resume, before
    it has set the epoch and restored how far into it the run was; worker processes would read the sampler at
    that moment. Started on the first batch, the sampler sees the epoch and the batches already done.
    """

    def __iter__(self) -> Iterator:  # type: ignore[override]
        return _StartOnFirstBatch(lambda: DataLoader.__iter__(self))


def distributed_world() -> tuple[int, int] | None:
    """``(world size, rank)`` of an initialized process group, else None."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size(), torch.distributed.get_rank()
    return None


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


def available_cores() -> int:
    """The cores this process may run on (the SLURM/cgroup allotment, not the whole machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
