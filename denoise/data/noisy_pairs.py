"""A user's own noisy/noisy pairs: two shots of every scene, matched by file name, for Noise2Noise.

``noisy_dir/x.png`` pairs with ``second_dir/x.png`` (any supported suffix, matched by stem), and with
``clean_dir/x.png`` when a clean folder is given (used only to score validation and test). The two shots must
show the same scene at the same place: :func:`misalignment` compares them at a scale where the noise has averaged
out and names the pairs that moved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from denoise.data.folder_pairs import _by_stem, _listing
from denoise.data.io import array2tensor, read_image
from denoise.data.sampling import sample_generator
from denoise.data.transforms import crop, random_crop_box, random_dihedral

#: the shots are compared after averaging blocks of this side (where the noise has mostly averaged out)
ALIGN_BLOCK = 8
#: below this correlation of the two shots' block means (after taking off their means) a pair looks misaligned
MIN_ALIGNMENT = 0.9


@dataclass(frozen=True)
class ShotPair:
    """Two noisy shots of one scene, and its clean image when there is one."""

    name: str
    first: Path
    second: Path
    clean: Path | None = None


def match_shots(noisy_dir: str | Path, second_dir: str | Path, clean_dir: str | Path | None = None) -> list[ShotPair]:
    """Every scene of ``noisy_dir`` with its second shot (and clean image); files without a partner are listed all
    at once."""
    folders = {"data.noisy_dir": noisy_dir, "data.second_dir": second_dir}
    if clean_dir:
        folders["data.clean_dir"] = clean_dir
    found = {key: _by_stem(folder, key) for key, folder in folders.items()}
    stems = set().union(*found.values())
    lonely = []
    for stem in sorted(stems):
        missing = [key for key in found if stem not in found[key]]
        if missing:
            present = next(found[key][stem] for key in found if stem in found[key])
            lonely.append(f"{present} (no {stem}.* in {' or '.join(missing)})")
    if lonely:
        given = " / ".join(f"{key}={folder}" for key, folder in folders.items())
        raise FileNotFoundError(
            f"{len(lonely)} scene(s) in {given} lack a partner (shots are matched by file name without "
            f"extension):{_listing(lonely)}"
        )
    clean = found.get("data.clean_dir", {})
    return [
        ShotPair(stem, found["data.noisy_dir"][stem], found["data.second_dir"][stem], clean.get(stem))
        for stem in sorted(stems)
    ]


def block_means(image: np.ndarray, block: int = ALIGN_BLOCK) -> np.ndarray:
    gray = image.astype(np.float64).mean(axis=2)
    rows, cols = gray.shape[0] // block, gray.shape[1] // block
    return gray[: rows * block, : cols * block].reshape(rows, block, cols, block).mean(axis=(1, 3))


def misalignment(first: np.ndarray, second: np.ndarray) -> float:
    """The correlation of the two shots' ``8 x 8`` block means (1.0: the same scene in the same place; a shift of
    a few pixels or another scene drops it)."""
    a, b = block_means(first), block_means(second)
    a, b = a - a.mean(), b - b.mean()
    scale = np.sqrt((a**2).sum() * (b**2).sum())
    return float((a * b).sum() / scale) if scale > 0 else 1.0


class ShotCrops(Dataset):
    """Training samples: a scene (uniformly), the same random crop and flip/rotation of both shots, which one is
    the input drawn at random (Noise2Noise is symmetric), and of the clean image when there is one."""

    def __init__(
        self,
        scenes: Sequence[tuple[np.ndarray, ...]],
        names: Sequence[str],
        patch_size: int,
        samples: int,
        augment: bool = True,
        seed: int = 0,
    ) -> None:
        self.scenes, self.names, self.patch_size = list(scenes), list(names), patch_size
        self.samples, self.augment, self.seed = samples, augment, seed

    def __len__(self) -> int:
        return self.samples

    def __getitem__(self, index: int) -> dict[str, Any]:
        import torch

        generator = sample_generator(self.seed, index)
        pick = int(torch.randint(0, len(self.scenes), (), generator=generator))
        images = self.scenes[pick]
        top, left = random_crop_box(images[0].shape[0], images[0].shape[1], self.patch_size, generator)
        patches = [array2tensor(crop(image, top, left, self.patch_size)) for image in images]
        if self.augment:
            patches = list(random_dihedral(*patches, generator=generator))
        if int(torch.randint(0, 2, (), generator=generator)):
            patches[0], patches[1] = patches[1], patches[0]
        sample = {"noisy": patches[0], "noisy2": patches[1], "name": self.names[pick]}
        if len(patches) > 2:
            sample["clean"] = patches[2]
        return sample


class FirstShots(Dataset):
    """Validation and test: each scene's first shot whole, with its clean image when there is one."""

    def __init__(self, pairs: Sequence[ShotPair], channels: int) -> None:
        self.pairs, self.channels = list(pairs), channels

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        pair = self.pairs[index]
        sample = {"noisy": array2tensor(read_image(pair.first, self.channels)), "name": pair.first.name}
        if pair.clean is not None:
            sample["clean"] = array2tensor(read_image(pair.clean, self.channels))
        return sample
