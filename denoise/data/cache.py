"""A crop-once patch store: big photos are cut into sub-images once, so training never decodes them again.

Like BasicSR's sub-image extraction: every training pair is cut into ``size x size`` sub-images on a grid of
``stride`` (the last row and column aligned to the image edge so nothing is lost), and the noisy and clean
sub-images go into memory-mapped ``.npy`` arrays (``N x size x size x C``; uint8 when every source is 8-bit with
one clean file, else uint16; for Noise2Noise also ``noisy2.npy``, the window of a second noisy shot) with an
``index.json``. Training crops come from these arrays without decoding any image.

The store's folder name holds a hash of the file list (paths, sizes, modification times) and the crop
settings, so a changed dataset or setting builds a new store instead of reusing a stale one. A store is
built into a temporary folder and renamed into place when complete, so a reader never sees half a store;
under DDP only rank 0 builds (Lightning's ``prepare_data``) and every rank then opens it read-only. The
arrays are opened lazily in each process, so DataLoader workers share the page cache, not copies.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch.utils.data import Dataset

from denoise.data.files import fsync_folder, write_text
from denoise.data.io import array2tensor, image_size, read_raw, to_channels
from denoise.data.pairs import ImagePair, aligned
from denoise.data.sampling import sample_generator
from denoise.data.transforms import crop, dihedral_view, random_crop_box

log = logging.getLogger(__name__)
STORE_VERSION = 1


def grid(length: int, size: int, stride: int) -> list[int]:
    """Crop starts along one axis: every ``stride``, plus one flush with the end (none when ``length < size``)."""
    starts = list(range(0, length - size + 1, stride))
    return [*starts, length - size] if starts and starts[-1] != length - size else starts


def store_key(
    pairs: Sequence[ImagePair], size: int, stride: int, channels: int, partners: Mapping[Path, Path] | None = None
) -> str:
    settings = {"version": STORE_VERSION, "size": size, "stride": stride, "channels": channels}
    if partners is not None:
        settings["second_noisy"] = True
    digest = hashlib.sha256(json.dumps(settings).encode())
    for pair in pairs:
        partner = [partners[pair.noisy]] if partners is not None else []
        for path in (pair.noisy, *pair.clean, *partner):
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


class CorruptStoreError(ValueError):
    """A patch store on disk does not match its index (a copy cut short, a hand edit)."""


class PatchStore:
    """One dataset's training pairs, cut once into sub-images on disk."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.index = self._read_index()
        self._arrays: tuple[np.ndarray, ...] | None = None
        self._pid = -1
        self.check()

    def _read_index(self) -> dict[str, Any]:
        try:
            index = json.loads((self.folder / "index.json").read_text())
        except (OSError, ValueError) as err:
            raise CorruptStoreError(f"the patch store {self.folder} has an unreadable index.json ({err})") from None
        if not isinstance(index, dict) or not {"patches", "size", "channels", "dtype", "pairs"} <= set(index):
            raise CorruptStoreError(f"the patch store {self.folder} has an index.json without its fields")
        return index

    def check(self) -> None:
        """The arrays on disk are what the index says (count, size, channels, dtype), read from their headers."""
        shape = (
            int(self.index["patches"]),
            int(self.index["size"]),
            int(self.index["size"]),
            int(self.index["channels"]),
        )
        for array in self.arrays:
            if array.shape != shape or array.dtype != np.dtype(self.index["dtype"]):
                raise CorruptStoreError(
                    f"the patch store {self.folder} holds arrays of {array.shape} {array.dtype}, not the index's "
                    f"{shape} {self.index['dtype']}"
                )

    @property
    def count(self) -> int:
        return int(self.index["patches"])

    @property
    def has_second_noisy(self) -> bool:
        return bool(self.index.get("second_noisy", False))

    @property
    def arrays(self) -> tuple[np.ndarray, ...]:
        """The memory-mapped noisy and clean arrays (and the second shots'), opened once per process (DataLoader
        workers included)."""
        if self._arrays is None or self._pid != os.getpid():
            names = ("noisy", "clean", "noisy2") if self.has_second_noisy else ("noisy", "clean")
            try:
                self._arrays = tuple(np.load(self.folder / f"{name}.npy", mmap_mode="r") for name in names)
            except (OSError, ValueError) as err:
                raise CorruptStoreError(f"the patch store {self.folder} has an unreadable array ({err})") from None
            self._pid = os.getpid()
        return self._arrays

    def __getstate__(self) -> dict[str, Any]:
        return {"folder": self.folder, "index": self.index, "_arrays": None, "_pid": -1}

    @classmethod
    def build(
        cls, pairs: Sequence[ImagePair], cache_dir: str | Path, name: str, size: int = 512, stride: int = 384,
        channels: int = 3, progress: bool = True, scene_mates: Mapping[Path, Sequence[Path]] | None = None,
    ) -> PatchStore:  # fmt: skip
        """Open the store for these pairs and settings, building it first if it does not exist. ``scene_mates``
        (noisy file -> the other noisy shots of its scene, as :func:`denoise.data.pairs.scene_mates` gives them)
        adds each sub-image's window of one of them, the first (the next shot of the scene), for Noise2Noise."""
        if not pairs:
            raise ValueError(f"{name}: no training pairs to put in a patch store")
        partners = {pair.noisy: scene_mates[pair.noisy][0] for pair in pairs} if scene_mates is not None else None
        key = store_key(pairs, size, stride, channels, partners)
        folder = Path(cache_dir).expanduser() / f"{name}-{key}"
        if (folder / "index.json").is_file():
            try:
                return cls(folder)
            except CorruptStoreError as err:  # derived data: rebuilt, never trained on
                log.warning("%s; rebuilding it", err)
                shutil.rmtree(folder, ignore_errors=True)
        layout = plan_layout(pairs, partners, size, stride, name)
        eight_bit = all(len(p.clean) == 1 for p in pairs) and all(
            _bit_depth(path) == 8 for p in pairs for path in (p.noisy, *p.clean)
        )
        dtype = np.dtype(np.uint8 if eight_bit else np.uint16)
        temporary = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir(parents=True)
        names = ("noisy", "clean", "noisy2") if partners else ("noisy", "clean")
        entries = write_patches(temporary, layout, names, partners, size, channels, dtype, name, progress)
        index = {"version": STORE_VERSION, "key": key, "size": size, "stride": stride, "channels": channels,
                 "dtype": dtype.name, "patches": sum(len(boxes) for _, boxes in layout), "pairs": entries,
                 "second_noisy": partners is not None}  # fmt: skip
        write_text(temporary / "index.json", json.dumps(index, indent=1))
        try:
            temporary.rename(folder)
        except OSError:  # another process finished the same store first
            shutil.rmtree(temporary, ignore_errors=True)
        fsync_folder(folder.parent)
        return cls(folder)


Layout = list[tuple[ImagePair, list[tuple[int, int]]]]


def plan_layout(pairs: Sequence[ImagePair], partners: Mapping[Path, Path] | None, size: int, stride: int,
                name: str) -> Layout:  # fmt: skip
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
    folder: Path, layout: Layout, names: Sequence[str], partners: Mapping[Path, Path] | None, size: int,
    channels: int, dtype: np.dtype, name: str, progress: bool,
) -> list[dict[str, Any]]:  # fmt: skip
    """Every window of every pair into one memory-mapped ``.npy`` per image kind, fsynced; the index's entries."""
    shape = (sum(len(boxes) for _, boxes in layout), size, size, channels)
    outputs = [np.lib.format.open_memmap(folder / f"{n}.npy", "w+", dtype=dtype, shape=shape) for n in names]
    entries, position = [], 0
    columns = [TextColumn(f"[bold]patch store {name}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task("pairs", total=len(layout))
        for pair, boxes in layout:
            images = _load_raw(pair, channels, dtype, partners[pair.noisy] if partners else None)
            for top, left in boxes:
                for output, image in zip(outputs, images, strict=False):
                    output[position] = crop(image, top, left, size)
                position += 1
            entries.append({"name": pair.name, "dataset": pair.dataset, "first": position - len(boxes),
                            "count": len(boxes)})  # fmt: skip
            bar.advance(task)
    for output in outputs:
        output.flush()
    del outputs
    for kind in names:  # on disk before the folder is renamed into place: a store is whole or absent
        with open(folder / f"{kind}.npy", "rb+") as handle:
            os.fsync(handle.fileno())
    return entries


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
        samples_per_epoch: int, augment: bool = True, seed: int = 0, second_noisy: bool = False,
    ) -> None:  # fmt: skip
        """Sample ``index`` draws from its own generator (``seed`` and the global sample number), so it is the
        same in any worker and after a resume. ``second_noisy``: samples hold ``noisy2`` (stores built with
        ``scene_mates``)."""
        for store in stores:
            if second_noisy and not store.has_second_noisy:
                raise ValueError(f"the patch store {store.folder} holds no second noisy shots (built without them)")
            if store.index["size"] < patch_size:
                raise ValueError(f"data.patch_size={patch_size} exceeds the store's {store.index['size']} crops")
        self.stores, self.patch_size = list(stores), patch_size
        self.samples_per_epoch, self.augment = samples_per_epoch, augment
        self.store_weights = torch.tensor(dataset_weights, dtype=torch.float64)
        self.seed, self.second_noisy = seed, second_noisy

    def __len__(self) -> int:
        return self.samples_per_epoch

    def __getitem__(self, index: int) -> dict[str, Any]:
        generator = sample_generator(self.seed, index)
        store = self.stores[int(torch.multinomial(self.store_weights, 1, generator=generator))]
        item = int(torch.randint(0, store.count, (), generator=generator))
        arrays = store.arrays if self.second_noisy else store.arrays[:2]
        size = store.index["size"]
        top, left = random_crop_box(size, size, self.patch_size, generator)
        patches = [crop(array[item], top, left, self.patch_size) for array in arrays]
        if self.augment:  # views: the one copy below makes each patch contiguous, flipped and rotated
            transform = int(torch.randint(0, 8, (), generator=generator))
            patches = [dihedral_view(patch, transform) for patch in patches]
        dataset = store.index["pairs"][0]["dataset"] if store.index["pairs"] else ""
        sample = {"noisy": _tensor(patches[0]), "clean": _tensor(patches[1]), "name": f"{store.folder.name}/{item}",
                  "dataset": dataset}  # fmt: skip
        if self.second_noisy:
            sample["noisy2"] = _tensor(patches[2])
        return sample
