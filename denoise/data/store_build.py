"""Cutting training pairs into a patch store's sub-images (:mod:`denoise.data.cache`): the windows of every pair on
the store's grid, and the memory-mapped arrays they are written into, one pair decoded at a time."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from denoise.data.console import Steps
from denoise.data.io import image_size, read_raw, to_channels
from denoise.data.pairs import ImagePair, aligned
from denoise.data.transforms import crop

log = logging.getLogger(__name__)


def grid(length: int, size: int, stride: int) -> list[int]:
    """Crop starts along one axis: every ``stride``, plus one flush with the end (none when ``length < size``)."""
    starts = list(range(0, length - size + 1, stride))
    return [*starts, length - size] if starts and starts[-1] != length - size else starts


def bit_depth(path: Path) -> int:
    """8 or 16, from the PNG header's bit-depth byte (JPEG and BMP are 8-bit; TIFFs are decoded)."""
    suffix = path.suffix.lower()
    if suffix == ".png":
        with path.open("rb") as handle:
            header = handle.read(25)
        return 16 if len(header) == 25 and header[24] == 16 else 8
    if suffix in {".tif", ".tiff"}:
        return 16 if read_raw(path).dtype == np.uint16 else 8
    return 8


def _load_raw(
    pair: ImagePair, channels: int, dtype: np.dtype, partner: Path | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The pair (and the partner shot, cropped to their common size) at the store's depth: uint8 as stored, or
    uint16 (8-bit sources scaled by 257, exact)."""
    images = aligned(pair, [to_channels(read_raw(p), channels, p) for p in (pair.noisy, *pair.clean)])
    if partner is not None:  # another shot of the scene: a few pixels of size may differ (RENOIR)
        second = to_channels(read_raw(partner), channels, partner)
        height, width = (min(images[0].shape[i], second.shape[i]) for i in (0, 1))
        images = [image[:height, :width] for image in (*images, second)]
    if dtype == np.uint16:
        images = [i.astype(np.uint16) * 257 if i.dtype == np.uint8 else i for i in images]
    sources = images[1:-1] if partner is not None else images[1:]
    clean = sources[0].astype(dtype) if len(sources) == 1 else np.round(np.mean(sources, axis=0)).astype(dtype)
    return images[0].astype(dtype), clean, images[-1].astype(dtype) if partner is not None else None


Layout = list[tuple[ImagePair, list[tuple[int, int]]]]


def plan_layout(
    pairs: Sequence[ImagePair], partners: Mapping[Path, Path] | None, size: int, stride: int, name: str
) -> Layout:
    """Each pair's sub-image windows (on the grid of its smallest file); pairs smaller than a window, all named in
    one error with the largest size that fits."""
    layout, too_small = [], []
    for pair in pairs:
        files = (pair.noisy, *pair.clean, *([partners[pair.noisy]] if partners else []))
        sizes = [image_size(p) for p in files]
        height, width = min(s[0] for s in sizes), min(s[1] for s in sizes)
        boxes = [(t, left) for t in grid(height, size, stride) for left in grid(width, size, stride)]
        if not boxes:
            too_small.append((pair, height, width))
        layout.append((pair, boxes))
    if too_small:
        smallest = min(min(h, w) for _, h, w in too_small)
        listed = ", ".join(f"{pair.noisy} ({h}x{w})" for pair, h, w in too_small[:10])
        more = f" and {len(too_small) - 10} more" if len(too_small) > 10 else ""
        raise ValueError(
            f"data.store.size={size} is larger than {len(too_small)} training pair(s) of {name}: {listed}{more}; "
            f"set data.store.size to at most {smallest} (and data.patch_size no larger), or "
            "data.store.enabled=false"
        )
    return layout


def write_patches(
    folder: Path,
    layout: Layout,
    names: Sequence[str],
    partners: Mapping[Path, Path] | None,
    size: int,
    channels: int,
    dtype: np.dtype,
    name: str,
    progress: bool,
) -> list[dict[str, Any]]:
    """Every window of every pair into one memory-mapped ``.npy`` per image kind, fsynced; the index's entries."""
    shape = (sum(len(boxes) for _, boxes in layout), size, size, channels)
    outputs = [np.lib.format.open_memmap(folder / f"{n}.npy", "w+", dtype=dtype, shape=shape) for n in names]
    entries, position = [], 0
    with Steps(f"patch store {name}", len(layout), "pairs", emit=log.info, enabled=progress) as bar:
        for pair, boxes in layout:
            images = _load_raw(pair, channels, dtype, partners[pair.noisy] if partners else None)
            for top, left in boxes:
                for output, image in zip(outputs, images, strict=False):
                    output[position] = crop(image, top, left, size)
                position += 1
            entries.append(
                {"name": pair.name, "dataset": pair.dataset, "first": position - len(boxes), "count": len(boxes)}
            )
            bar.advance(1, pair.name)
    for output in outputs:
        output.flush()
    del outputs
    for kind in names:  # on disk before the folder is renamed into place: a store is whole or absent
        with open(folder / f"{kind}.npy", "rb+") as handle:
            os.fsync(handle.fileno())
    return entries
