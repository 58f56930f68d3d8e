"""The pairs the EDA reads: every pair of a data module once, through the DataModule's own pair stream, with
the metadata fields the report counts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from denoise.data.pairs import PairSample

#: one pair as float32 ``H x W x C`` arrays with its dataset and metadata (the DataModule's own type)
Sample = PairSample

#: metadata fields counted per dataset, in report order (others are ignored)
CATEGORY_FIELDS = ("camera", "iso", "shutter", "temperature", "brightness", "batch", "scene", "split")


#: how the report names each category
CATEGORY_LABELS = {
    "camera": "camera",
    "iso": "ISO",
    "shutter": "shutter speed",
    "temperature": "illuminant (K)",
    "brightness": "brightness",
    "batch": "batch",
    "scene": "scene",
    "split": "split",
    "dataset": "dataset",
}


def iter_samples(datamodule: Any) -> Iterator[Sample]:
    """Every pair of a data module once, decoded one at a time (``datamodule.iter_pairs``), keeping only the
    metadata the report counts."""
    for pair in datamodule.iter_pairs():
        meta = {k: v for k, v in pair.meta.items() if k in CATEGORY_FIELDS}
        yield Sample(pair.name, pair.dataset, pair.noisy, pair.clean, meta)


def thumbnail(sample: Sample, size: int) -> Sample:
    """The central ``size x size`` region of a pair (the grid shows detail, not the whole photo)."""
    height, width = sample.clean.shape[:2]
    top, left = max(0, (height - size) // 2), max(0, (width - size) // 2)
    window = (slice(top, top + size), slice(left, left + size))
    return Sample(sample.name, sample.dataset, sample.noisy[window].copy(), sample.clean[window].copy(), sample.meta)
