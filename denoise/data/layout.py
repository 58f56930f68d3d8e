"""What a dataset file provides: the declared interfaces the DataModule talks to, instead of probing
attributes.

A :class:`Layout` knows only its files and formats: which pairs make its train/val/test splits (each pair
named, grouped by scene, with its metadata) and, optionally, fixed evaluation blocks shipped with it (SIDD's
validation .mat). A :class:`Benchmark` layout also has official inputs without ground truth and writes the
files a benchmark server takes; running a network over them and timing it is the evaluation's job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from denoise.data.pairs import ImagePair

#: noisy blocks, clean blocks (``N x H x W x C``, uint8) and their names
Blocks = tuple[np.ndarray, np.ndarray, list[str]]


@runtime_checkable
class Layout(Protocol):
    """One dataset's pairs."""

    name: str

    def splits(self) -> dict[str, list[ImagePair]]:
        """The pairs of ``train``, ``val`` and ``test`` (a pair may be in val and test both)."""
        ...

    def blocks(self, split: str) -> Blocks | None:
        """Fixed evaluation blocks of ``split`` shipped with the dataset, or None to use its pairs."""
        ...


@runtime_checkable
class Benchmark(Protocol):
    """A layout with an official benchmark: noisy inputs without ground truth, and the files to submit."""

    name: str

    def benchmark(self) -> np.ndarray | None:
        """The benchmark's noisy inputs (``images x blocks x H x W x C`` uint8), or None when not present."""
        ...

    def write_benchmark(self, out_dir: str | Path, denoised: np.ndarray, seconds_per_megapixel: float) -> list[Path]:
        """Write the submission files for ``denoised`` (uint8, shaped like :meth:`benchmark`)."""
        ...
