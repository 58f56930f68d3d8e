"""Clean images with synthetic noise: the photos that ship inside scikit-image, or any folders of images.

The embedded default needs no download: scikit-image installs these photos with the package. The split is
fixed by name so results are comparable across runs and machines. Validation and test noise comes from a
per-image seed (the base seed and the image's name), so a test result is the same on every run.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from denoise.data.io import list_images, read_raw, to_channels
from denoise.data.pairs import crop, random_crop_box, random_dihedral, to_tensor

#: scikit-image's bundled photos (file names in ``skimage/data``), split once by name
EMBEDDED_SPLITS: dict[str, tuple[str, ...]] = {
    "train": (
        "rocket.jpg",
        "motorcycle_left.png",
        "motorcycle_right.png",
        "hubble_deep_field.jpg",
        "ihc.png",
        "retina.jpg",
        "camera.png",
        "coins.png",
        "moon.png",
        "brick.png",
        "grass.png",
        "gravel.png",
    ),
    "val": ("coffee.png",),
    "test": ("astronaut.png", "chelsea.png"),
}


def embedded_files(split: str) -> list[Path]:
    """Paths of the embedded photos of ``split`` (train, val or test) inside the installed scikit-image."""
    import skimage.data

    root = Path(skimage.data.__file__).parent
    files = [root / name for name in EMBEDDED_SPLITS[split]]
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"scikit-image's bundled photos are missing: {missing}; reinstall scikit-image>=0.22 "
            "or name your own folders with data.train_dirs / data.val_dirs / data.test_dirs"
        )
    return files


def resolve_files(dirs: Sequence[str] | None, split: str) -> list[Path]:
    """Image files of one split: the user's folders (``data.<split>_dirs``) or the embedded photos."""
    if dirs is None:
        return embedded_files(split)
    if isinstance(dirs, str | Path):
        dirs = [dirs]
    files: list[Path] = []
    for i, folder in enumerate(dirs):
        files.extend(list_images(folder, key=f"data.{split}_dirs[{i}]"))
    return files


def load_images(files: Sequence[Path], channels: int) -> list[np.ndarray]:
    """Decode every file once (uint8/uint16 kept, so memory stays at the files' own depth)."""
    return [to_channels(read_raw(path), channels, path) for path in files]


def image_seed(base_seed: int, name: str) -> int:
    """A stable per-image seed: independent of list order, identical on every run and machine."""
    return (base_seed * 1_000_003 + zlib.crc32(name.encode())) % (2**63)


class RandomPatches(Dataset):
    """Training samples: a random image, a random aligned crop, a random flip/rot90, fresh noise.

    One epoch is ``samples_per_epoch`` crops, so epoch length does not depend on how many photos there are.
    With ``fixed_seed`` sample ``i`` is always the same crop with the same noise (for overfitting one batch).
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        names: Sequence[str],
        noise,
        patch_size: int,
        samples_per_epoch: int,
        augment: bool = True,
        fixed_seed: int | None = None,
    ) -> None:
        for image, name in zip(images, names, strict=True):
            if min(image.shape[:2]) < patch_size:
                raise ValueError(
                    f"training image {name} is {image.shape[0]}x{image.shape[1]}, smaller than "
                    f"data.patch_size={patch_size}"
                )
        self.images, self.names = list(images), list(names)
        self.noise, self.patch_size = noise, patch_size
        self.samples_per_epoch, self.augment = samples_per_epoch, augment
        self.fixed_seed = fixed_seed

    def __len__(self) -> int:
        return self.samples_per_epoch

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        generator = None if self.fixed_seed is None else torch.Generator().manual_seed(self.fixed_seed + index)
        pick = int(torch.randint(0, len(self.images), (), generator=generator))
        image = self.images[pick]
        top, left = random_crop_box(image.shape[0], image.shape[1], self.patch_size, generator)
        clean = to_tensor(crop(image, top, left, self.patch_size))
        if self.augment:
            (clean,) = random_dihedral(clean, generator=generator)
        return {"noisy": self.noise(clean, generator), "clean": clean, "name": self.names[pick]}


class NoisyImages(Dataset):
    """Whole images for validation and test, each with noise drawn from its own fixed seed."""

    def __init__(self, images: Sequence[np.ndarray], names: Sequence[str], noise, seed: int = 0) -> None:
        self.images, self.names, self.noise, self.seed = list(images), list(names), noise, seed

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        clean = to_tensor(self.images[index])
        generator = torch.Generator().manual_seed(image_seed(self.seed, self.names[index]))
        return {"noisy": self.noise(clean, generator), "clean": clean, "name": self.names[index]}
