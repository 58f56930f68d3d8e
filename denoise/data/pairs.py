"""Paired samples: aligned random crops and flips/rot90 applied identically to every image of a sample, and
the datasets that serve real noisy/clean pairs whatever layout found them."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from denoise.data.io import ImageReadError, array2tensor, read_image
from denoise.data.sampling import sample_generator
from denoise.data.transforms import crop, random_crop_box, random_dihedral

# -- real noisy/clean pairs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImagePair:
    """One real noisy photo and its clean target, as a dataset's layout names them.

    ``clean`` holds one file, or several that are averaged (RENOIR's reference and full exposure).
    ``group`` is the unit a train/val split keeps together (a SIDD scene instance, a RENOIR batch, a NIND
    scene), so crops of one scene never land on both sides.
    """

    noisy: Path
    clean: tuple[Path, ...]
    name: str
    dataset: str
    group: str
    meta: dict[str, Any] = field(default_factory=dict, compare=False)
    crop_to_common: bool = False  # tolerate a few pixels of size difference (RENOIR), with a warning


@dataclass
class PairSample:
    """One decoded pair as float32 ``H x W x C`` arrays in [0, 1], with its dataset and metadata: what the
    DataModule streams to anything that reads every pair once (the EDA)."""

    name: str
    dataset: str
    noisy: np.ndarray
    clean: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)


def scene_mates(pairs: Sequence[ImagePair]) -> dict[Path, list[Path]]:
    """Every pair's noisy file -> the noisy files of the other pairs of its scene (same dataset and group):
    independent shots of the same scene (SIDD's _010 and _011, NIND's ISOs, a RENOIR batch's images), in the
    scene's order starting after the pair's own (so taking each one's first pairs every shot with another)."""
    by_scene: dict[tuple[str, str], list[Path]] = {}
    for pair in pairs:
        shots = by_scene.setdefault((pair.dataset, pair.group), [])
        if pair.noisy not in shots:
            shots.append(pair.noisy)
    mates = {}
    for pair in pairs:
        shots = by_scene[(pair.dataset, pair.group)]
        position = shots.index(pair.noisy)
        mates[pair.noisy] = shots[position + 1 :] + shots[:position]
    return mates


def unique_pairs(pairs_by_split: dict[str, list[ImagePair]]) -> list[ImagePair]:
    """Every pair once, whatever splits it is in (SIDD's val and test are the same pairs), in split order."""
    seen, pairs = set(), []
    for split in ("train", "val", "test"):
        for pair in pairs_by_split.get(split, []):
            if pair.noisy not in seen:
                seen.add(pair.noisy)
                pairs.append(pair)
    return pairs


def aligned(pair: ImagePair, images: list[np.ndarray]) -> list[np.ndarray]:
    """The pair's images (noisy first) at one size: equal sizes pass, a few pixels of difference are cropped
    with a warning where the layout allows it (``crop_to_common``), anything else is an error naming the files."""
    shapes = {image.shape[:2] for image in images}
    if len(shapes) == 1:
        return images
    paths = (pair.noisy, *pair.clean)
    sizes = ", ".join(f"{p} is {i.shape[0]}x{i.shape[1]}" for p, i in zip(paths, images, strict=True))
    if not pair.crop_to_common:
        raise ImageReadError(f"pair {pair.name}: the images differ in size ({sizes}); expected equal sizes")
    height, width = min(s[0] for s in shapes), min(s[1] for s in shapes)
    warnings.warn(f"pair {pair.name}: sizes differ ({sizes}); cropping to {height}x{width}", stacklevel=3)
    return [image[:height, :width] for image in images]


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """The whole photo as ``size x size`` (area averaging when shrinking), keeping ``H x W x C``."""
    out = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return out.reshape(size, size, image.shape[2])


def load_pair(pair: ImagePair, channels: int, resize: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Decode a pair as float32 ``H x W x C`` in [0, 1] (each file scaled by its own bit depth); with ``resize``
    the whole photo shrunk to ``resize x resize`` (the seed's protocol)."""
    images = aligned(pair, [read_image(path, channels) for path in (pair.noisy, *pair.clean)])
    clean = images[1] if len(images) == 2 else np.mean(images[1:], axis=0, dtype=np.float32)
    if resize:
        return resize_square(images[0], resize), resize_square(clean, resize)
    return images[0], clean


class PairPatches(Dataset):
    """Training samples from real pairs: a pair (by weight), an aligned random crop, a flip/rot90.

    This path decodes the whole photo for every sample; the patch store replaces it for big photos.
    """

    def __init__(
        self,
        pairs: Sequence[ImagePair],
        channels: int,
        patch_size: int,
        samples_per_epoch: int | None,
        augment: bool = True,
        weights: Sequence[float] | None = None,
        resize: int | None = None,
        seed: int = 0,
        scene_mates: Mapping[Path, Sequence[Path]] | None = None,
    ) -> None:
        """``samples_per_epoch=None``: an epoch is one pass over the pairs (each once, in the sampler's shuffled
        order) instead of that many weighted draws. Sample ``index`` draws from its own generator (``seed`` and
        the global sample number): the same in any process and after a resume. ``scene_mates`` (noisy file ->
        the other noisy shots of its scene) adds ``noisy2``, one of them cropped alike (Noise2Noise)."""
        if not pairs:
            raise ValueError("the training split holds no pairs")
        self.pairs, self.channels, self.patch_size = list(pairs), channels, patch_size
        self.samples_per_epoch, self.augment, self.resize = samples_per_epoch, augment, resize
        self.weights = torch.as_tensor(weights if weights is not None else [1.0] * len(pairs), dtype=torch.float64)
        self.seed, self.scene_mates = seed, scene_mates
        # one pass over the pairs: the sample's position picks the pair, so the sampler shuffles positions
        self.picks_by_position = samples_per_epoch is None

    def __len__(self) -> int:
        return len(self.pairs) if self.samples_per_epoch is None else self.samples_per_epoch

    def __getitem__(self, index: int) -> dict[str, Any]:
        generator = sample_generator(self.seed, index)
        if self.samples_per_epoch is None:
            pair = self.pairs[index % len(self.pairs)]
        else:
            pair = self.pairs[int(torch.multinomial(self.weights, 1, generator=generator))]
        noisy, clean = load_pair(pair, self.channels, self.resize)
        second = None
        if self.scene_mates is not None:
            mates = self.scene_mates[pair.noisy]
            other = mates[int(torch.randint(0, len(mates), (), generator=generator))]
            second = read_image(other, self.channels)
            second = resize_square(second, self.resize) if self.resize else second
            height, width = (min(a.shape[i] for a in (noisy, second)) for i in (0, 1))  # a few pixels may differ
            noisy, clean, second = (a[:height, :width] for a in (noisy, clean, second))
        if min(noisy.shape[:2]) < self.patch_size:
            raise ValueError(f"pair {pair.name} is {noisy.shape[0]}x{noisy.shape[1]}, smaller than data.patch_size")
        top, left = random_crop_box(noisy.shape[0], noisy.shape[1], self.patch_size, generator)
        images = [array2tensor(crop(a, top, left, self.patch_size)) for a in (noisy, clean, second) if a is not None]
        if self.augment:
            images = list(random_dihedral(*images, generator=generator))
        sample = {"noisy": images[0], "clean": images[1], "name": pair.name, "dataset": pair.dataset}
        if second is not None:
            sample["noisy2"] = images[2]
        return sample


class PairImages(Dataset):
    """Whole real pairs for validation and test."""

    def __init__(self, pairs: Sequence[ImagePair], channels: int, resize: int | None = None) -> None:
        self.pairs, self.channels, self.resize = list(pairs), channels, resize

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        pair = self.pairs[index]
        noisy, clean = load_pair(pair, self.channels, self.resize)
        return {"noisy": array2tensor(noisy), "clean": array2tensor(clean), "name": pair.name, "dataset": pair.dataset}


class BlockImages(Dataset):
    """Fixed blocks held in memory (e.g. SIDD's 1280 validation blocks), ``N x H x W x C`` uint8 arrays."""

    def __init__(self, noisy: np.ndarray, clean: np.ndarray, names: Sequence[str], dataset: str) -> None:
        if noisy.shape != clean.shape:
            raise ValueError(f"{dataset}: noisy blocks {noisy.shape} and clean blocks {clean.shape} differ")
        self.noisy, self.clean, self.names, self.dataset = noisy, clean, list(names), dataset

    def __len__(self) -> int:
        return len(self.noisy)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {
            "noisy": array2tensor(self.noisy[index]),
            "clean": array2tensor(self.clean[index]),
            "name": self.names[index],
            "dataset": self.dataset,
        }


def split_by_group(
    pairs: Sequence[ImagePair], fraction: float, explicit: Sequence[str] | None = None
) -> tuple[list[ImagePair], list[ImagePair]]:
    """Hold out whole groups: the ``explicit`` ones, or every k-th group in sorted order for ``fraction``."""
    groups = sorted({p.group for p in pairs})
    if explicit is not None:
        unknown = sorted(set(map(str, explicit)) - set(groups))
        if unknown:
            raise ValueError(f"held-out groups {unknown} are not in the dataset (it has {groups[:8]}...)")
        held = set(map(str, explicit))
    elif fraction <= 0:
        held = set()
    else:
        count = min(len(groups), max(1, round(fraction * len(groups))))
        step = len(groups) / count
        held = {groups[int(i * step)] for i in range(count)}
    return [p for p in pairs if p.group not in held], [p for p in pairs if p.group in held]


def split_three_ways(
    pairs: Sequence[ImagePair], val_fraction: float, test_fraction: float
) -> dict[str, list[ImagePair]]:
    """train / val / test by whole groups: ``test_fraction`` of all groups, then ``val_fraction`` of all groups
    from the rest."""
    rest, test = split_by_group(pairs, test_fraction)
    train, val = split_by_group(rest, val_fraction / max(1e-9, 1.0 - test_fraction))
    return {"train": train, "val": val, "test": test}
