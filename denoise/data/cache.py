"""A crop-once patch store: big photos are cut into sub-images once, so training never decodes them again.

Like BasicSR's sub-image extraction: every training pair is cut into ``size x size`` sub-images on a grid
of ``stride`` (the last row and column are aligned to the image edge so nothing is lost), and the noisy
and clean sub-images go into two memory-mapped ``.npy`` arrays (``N x size x size x C``; uint8 when every
source is 8-bit with a single clean file, else uint16) with an ``index.json``. Training crops come from
these arrays without decoding any image.

The store's folder name holds a hash of the file list (paths, sizes, modification times) and the crop
settings, so a changed dataset or setting builds a new store instead of reusing a stale one. A store is
built into a temporary folder and renamed into place when complete, so a reader never sees half a store;
under DDP only rank 0 builds (Lightning's ``prepare_data``) and every rank then opens it read-only. The
arrays are opened lazily in each process, so DataLoader workers share the page cache, not copies.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch.utils.data import Dataset

from denoise.data.io import array2tensor, image_size, read_raw, to_channels
from denoise.data.pairs import ImagePair, aligned
from denoise.data.sampling import sample_generator
from denoise.data.transforms import crop, dihedral_view, random_crop_box

STORE_VERSION = 1


def grid(length: int, size: int, stride: int) -> list[int]:
    """Crop starts along one axis: every ``stride``, plus one flush with the end."""
    if length < size:
        return []
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts


def store_key(pairs: Sequence[ImagePair], size: int, stride: int, channels: int) -> str:
    digest = hashlib.sha256(json.dumps({"version": STORE_VERSION, "size": size, "stride": stride,
                                        "channels": channels}).encode())  # fmt: skip
    for pair in pairs:
        for path in (pair.noisy, *pair.clean):
            stat = Path(path).stat()
            digest.update(f"{pair.name}|{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _bit_depth(path: Path) -> int:
    """8 or 16, from the PNG header's bit-depth byte (JPEG and BMP are 8-bit; TIFFs are decoded)."""
    suffix = path.suffix.lower()
    if suffix == ".png":
        with path.open("rb") as handle:
            header = handle.read(25)
        return 16 if len(header) == 25 and header[24] == 16 else 8
    if suffix in {".tif", ".tiff"}:
        return 16 if read_raw(path).dtype == np.uint16 else 8
    return 8


def _load_raw(pair: ImagePair, channels: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """The pair at the store's depth: uint8 as stored, or uint16 (8-bit sources scaled by 257, exact)."""
    images = aligned(pair, [to_channels(read_raw(p), channels, p) for p in (pair.noisy, *pair.clean)])
    if dtype == np.uint16:
        images = [i.astype(np.uint16) * 257 if i.dtype == np.uint8 else i for i in images]
    clean = images[1] if len(images) == 2 else np.round(np.mean(images[1:], axis=0)).astype(dtype)
    return images[0].astype(dtype), clean


class PatchStore:
    """One dataset's training pairs, cut once into sub-images on disk."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.index = json.loads((self.folder / "index.json").read_text())
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None
        self._pid = -1

    @property
    def count(self) -> int:
        return int(self.index["patches"])

    @property
    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The memory-mapped noisy and clean arrays, opened once per process (DataLoader workers included)."""
        if self._arrays is None or self._pid != os.getpid():
            self._arrays = (np.load(self.folder / "noisy.npy", mmap_mode="r"),
                            np.load(self.folder / "clean.npy", mmap_mode="r"))  # fmt: skip
            self._pid = os.getpid()
        return self._arrays

    def __getstate__(self) -> dict[str, Any]:
        return {"folder": self.folder, "index": self.index, "_arrays": None, "_pid": -1}

    @classmethod
    def build(
        cls, pairs: Sequence[ImagePair], cache_dir: str | Path, name: str, size: int = 512, stride: int = 384,
        channels: int = 3, progress: bool = True,
    ) -> PatchStore:  # fmt: skip
        """Open the store for these pairs and settings, building it first if it does not exist."""
        if not pairs:
            raise ValueError(f"{name}: no training pairs to put in a patch store")
        key = store_key(pairs, size, stride, channels)
        folder = Path(cache_dir).expanduser() / f"{name}-{key}"
        if (folder / "index.json").is_file():
            return cls(folder)
        layout, too_small = [], []
        for pair in pairs:
            height, width = min((image_size(p) for p in (pair.noisy, *pair.clean)), key=lambda s: s[0] * s[1])
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
        total = sum(len(boxes) for _, boxes in layout)
        eight_bit = all(len(p.clean) == 1 for p in pairs) and all(
            _bit_depth(path) == 8 for p in pairs for path in (p.noisy, *p.clean)
        )
        dtype = np.dtype(np.uint8 if eight_bit else np.uint16)
        temporary = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir(parents=True)
        shape = (total, size, size, channels)
        noisy_out = np.lib.format.open_memmap(temporary / "noisy.npy", mode="w+", dtype=dtype, shape=shape)
        clean_out = np.lib.format.open_memmap(temporary / "clean.npy", mode="w+", dtype=dtype, shape=shape)
        entries, position = [], 0
        columns = [TextColumn(f"[bold]patch store {name}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
        with Progress(*columns, disable=not progress) as bar:
            task = bar.add_task("pairs", total=len(layout))
            for pair, boxes in layout:
                noisy, clean = _load_raw(pair, channels, dtype)
                for top, left in boxes:
                    noisy_out[position] = crop(noisy, top, left, size)
                    clean_out[position] = crop(clean, top, left, size)
                    position += 1
                entries.append({"name": pair.name, "dataset": pair.dataset, "first": position - len(boxes),
                                "count": len(boxes)})  # fmt: skip
                bar.advance(task)
        noisy_out.flush()
        clean_out.flush()
        del noisy_out, clean_out
        index = {"version": STORE_VERSION, "key": key, "size": size, "stride": stride, "channels": channels,
                 "dtype": dtype.name, "patches": total, "pairs": entries}  # fmt: skip
        (temporary / "index.json").write_text(json.dumps(index, indent=1))
        try:
            temporary.rename(folder)
        except OSError:  # another process finished the same store first
            shutil.rmtree(temporary, ignore_errors=True)
        return cls(folder)


def _tensor(patch: np.ndarray) -> torch.Tensor:
    """uint8 stays uint8 (``C x H x W``; 4x less to copy to the GPU, made float there by the datamodule);
    uint16 becomes float32 in [0, 1]."""
    if patch.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(np.asarray(patch).transpose(2, 0, 1)))
    return array2tensor(np.asarray(patch))


class StorePatches(Dataset):
    """Training samples from patch stores: a stored sub-image (by dataset weight), a random crop, flip/rot90."""

    def __init__(
        self, stores: Sequence[PatchStore], dataset_weights: Sequence[float], patch_size: int,
        samples_per_epoch: int, augment: bool = True, seed: int = 0,
    ) -> None:  # fmt: skip
        """Sample ``index`` draws from its own generator (``seed`` and the global sample number), so it is the
        same in any worker and after a resume."""
        for store in stores:
            if store.index["size"] < patch_size:
                raise ValueError(f"data.patch_size={patch_size} exceeds the store's {store.index['size']} crops")
        self.stores, self.patch_size = list(stores), patch_size
        self.samples_per_epoch, self.augment = samples_per_epoch, augment
        self.store_weights = torch.tensor(dataset_weights, dtype=torch.float64)
        self.seed = seed

    def __len__(self) -> int:
        return self.samples_per_epoch

    def __getitem__(self, index: int) -> dict[str, Any]:
        generator = sample_generator(self.seed, index)
        store = self.stores[int(torch.multinomial(self.store_weights, 1, generator=generator))]
        item = int(torch.randint(0, store.count, (), generator=generator))
        noisy_all, clean_all = store.arrays
        size = store.index["size"]
        top, left = random_crop_box(size, size, self.patch_size, generator)
        noisy_patch = crop(noisy_all[item], top, left, self.patch_size)
        clean_patch = crop(clean_all[item], top, left, self.patch_size)
        if self.augment:  # views: the one copy below makes each patch contiguous, flipped and rotated
            transform = int(torch.randint(0, 8, (), generator=generator))
            noisy_patch, clean_patch = dihedral_view(noisy_patch, transform), dihedral_view(clean_patch, transform)
        noisy, clean = _tensor(noisy_patch), _tensor(clean_patch)
        dataset = store.index["pairs"][0]["dataset"] if store.index["pairs"] else ""
        return {"noisy": noisy, "clean": clean, "name": f"{store.folder.name}/{item}", "dataset": dataset}
