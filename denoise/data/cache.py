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
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from denoise.data.files import fsync_folder, left_by_dead_process, owner_tag, write_text
from denoise.data.interrupt import interruptible
from denoise.data.io import array2tensor
from denoise.data.pairs import ImagePair
from denoise.data.sampling import sample_generator
from denoise.data.store_build import bit_depth, plan_layout, write_patches
from denoise.data.transforms import crop, dihedral_view, random_crop_box

log = logging.getLogger(__name__)
STORE_VERSION = 1


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
        if not STORE_NAME.match(name):
            expected = "expected a plain name (letters, digits, '.', '_', '-')"
            raise ValueError(f"data.datasets: the name {name!r} names a patch store folder; {expected}")
        partners = {pair.noisy: scene_mates[pair.noisy][0] for pair in pairs} if scene_mates is not None else None
        key = store_key(pairs, size, stride, channels, partners)
        folder = Path(cache_dir).expanduser() / f"{name}-{key}"
        if (folder / "index.json").is_file():
            try:
                return cls(folder)
            except CorruptStoreError as err:  # derived data: rebuilt, never trained on
                log.warning("%s; rebuilding it", err)
                shutil.rmtree(folder, ignore_errors=True)
        remove_stale_builds(folder.parent)
        temporary = folder.with_name(f"{folder.name}{TEMPORARY}{owner_tag()}")
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir(parents=True)
        try:
            with interruptible(f"the build of the patch store {folder}"):
                write_store(temporary, pairs, partners, key, size, stride, channels, name, progress)
        except BaseException:  # a signal, a full disk, a bad file: the half-made store is removed, never kept
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        try:
            temporary.rename(folder)
        except OSError:  # another process finished the same store first
            shutil.rmtree(temporary, ignore_errors=True)
        fsync_folder(folder.parent)
        return cls(folder)


#: a store's name is a folder name: the dataset's name in data.datasets
STORE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
#: a store being built is ``<name>-<key>.tmp-<host>.<pid>`` until it is renamed into place
TEMPORARY = ".tmp-"


def remove_stale_builds(cache_dir: Path) -> list[Path]:
    """Remove the half-built stores that killed processes of this host left in ``cache_dir`` (never a live
    process's, nor another host's); returns the removed."""
    removed = []
    for path in sorted(cache_dir.glob(f"*{TEMPORARY}*")) if cache_dir.is_dir() else []:
        owner = path.name.rpartition(TEMPORARY)[2]
        if path.is_dir() and left_by_dead_process(owner):
            shutil.rmtree(path, ignore_errors=True)
            log.info("Removed %s, a patch store whose build was killed", path)
            removed.append(path)
        elif path.is_dir() and owner.isdigit():  # an earlier version's name: no host to tell whose it is
            unknown = "a half-built patch store of an earlier version (pid %s, host not recorded)"
            log.warning(f"%s is {unknown}: remove it by hand if no build of it is running", path, owner)
    return removed


def write_store(
    folder: Path,
    pairs: Sequence[ImagePair],
    partners: Mapping[Path, Path] | None,
    key: str,
    size: int,
    stride: int,
    channels: int,
    name: str,
    progress: bool,
) -> None:
    """Every pair's sub-images and the index into ``folder`` (uint8 when every source is 8-bit with one clean file,
    else uint16)."""
    layout = plan_layout(pairs, partners, size, stride, name)
    eight_bit = all(len(p.clean) == 1 for p in pairs) and all(
        bit_depth(path) == 8 for p in pairs for path in (p.noisy, *p.clean)
    )
    dtype = np.dtype(np.uint8 if eight_bit else np.uint16)
    names = ("noisy", "clean", "noisy2") if partners else ("noisy", "clean")
    entries = write_patches(folder, layout, names, partners, size, channels, dtype, name, progress)
    index = {
        "version": STORE_VERSION,
        "key": key,
        "size": size,
        "stride": stride,
        "channels": channels,
        "dtype": dtype.name,
        "patches": sum(len(boxes) for _, boxes in layout),
        "pairs": entries,
        "second_noisy": partners is not None,
    }
    write_text(folder / "index.json", json.dumps(index, indent=1))


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
