"""RENOIR, the real low-light noise dataset (Anaya, Barbu, J. Vis. Commun. Image Represent. 2018), in its
published aligned releases; this file knows only where RENOIR keeps its files.

``Mi3_Aligned``, ``T3i_Aligned`` and ``S90_Aligned``, each possibly nested twice (``T3i_Aligned/T3i_Aligned/
Batch_001/``). In each ``Batch_NNN`` the files are matched by suffix: ``*Reference.bmp`` and ``*full.bmp``
(two low-ISO exposures of the scene) and one or more ``*Noisy.bmp``; anything else is ignored. The clean
target is the mean of Reference and full (``clean: reference | full | mean``). Where a batch's images differ
in size by a few pixels they are cropped to the common size with a warning. The split unit is the batch.
"""

from __future__ import annotations

import re
from pathlib import Path

from denoise.data.pairs import ImagePair, split_three_ways

PUBLISHED = "http://ani.stat.fsu.edu/~abarbu/Renoir.html (Mi3_Aligned, T3i_Aligned, S90_Aligned)"
LAYOUT = f"""Expected RENOIR's aligned releases under data.root:
  <root>/Mi3_Aligned/Batch_001/*Reference.bmp, *full.bmp, *Noisy.bmp (one or more)
  <root>/T3i_Aligned/T3i_Aligned/Batch_001/...   (a release may be nested twice)
  <root>/S90_Aligned/...
  (<root> may also be one release folder)
RENOIR is published at {PUBLISHED}."""
CAMERAS = {"Mi3": "Xiaomi Mi3", "T3i": "Canon EOS Rebel T3i", "S90": "Canon PowerShot S90"}
BATCH = re.compile(r"^Batch_\d+$", re.IGNORECASE)
CLEAN_CHOICES = ("reference", "full", "mean")


def find_batches(root: str | Path) -> list[tuple[str, Path]]:
    """(camera, batch folder) for every ``Batch_NNN`` under ``<camera>_Aligned`` (nested up to twice)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data.root={root}: no such folder.\n{LAYOUT}")
    releases = [root] if root.name.endswith("_Aligned") else sorted(root.glob("*_Aligned"))
    batches = []
    for release in releases:
        camera = release.name.removesuffix("_Aligned")
        for depth in ("*", "*/*"):
            found = sorted(p for p in release.glob(depth) if p.is_dir() and BATCH.match(p.name))
            if found:
                batches += [(camera, p) for p in found]
                break
    if not batches:
        raise FileNotFoundError(f"data.root={root} holds no <camera>_Aligned/Batch_NNN folders.\n{LAYOUT}")
    return batches


def scan(root: str | Path, clean: str = "mean") -> list[ImagePair]:
    if clean not in CLEAN_CHOICES:
        raise ValueError(f"data.datasets.renoir.clean={clean!r}; expected one of {CLEAN_CHOICES}")
    pairs = []
    for camera, batch in find_batches(root):
        files = sorted(p for p in batch.iterdir() if p.is_file())
        reference = [p for p in files if p.name.lower().endswith("reference.bmp")]
        full = [p for p in files if p.name.lower().endswith("full.bmp")]
        noisy = [p for p in files if p.name.lower().endswith("noisy.bmp")]
        for label, found in (("*Reference.bmp", reference), ("*full.bmp", full)):
            if len(found) != 1:
                raise FileNotFoundError(f"RENOIR batch {batch} needs exactly one {label}, found {len(found)}")
        if not noisy:
            raise FileNotFoundError(f"RENOIR batch {batch} has no *Noisy.bmp image")
        targets = {"reference": (reference[0],), "full": (full[0],), "mean": (reference[0], full[0])}[clean]
        group = f"{camera}/{batch.name}"
        meta = {"camera": CAMERAS.get(camera, camera), "batch": batch.name, "release": camera}
        for image in noisy:
            pairs.append(ImagePair(noisy=image, clean=targets, name=f"{group}/{image.stem}", dataset="renoir",
                                   group=group, meta=meta, crop_to_common=True))  # fmt: skip
    return pairs


class RENOIR:
    """The RENOIR layout: pairs split by batch (val and test fractions of the batches)."""

    name = "renoir"

    def __init__(self, root: str, clean: str = "mean", val_fraction: float = 0.1, test_fraction: float = 0.1) -> None:
        self.root, self.clean = root, clean
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self._splits: dict[str, list[ImagePair]] | None = None

    def splits(self) -> dict[str, list[ImagePair]]:
        if self._splits is None:
            self._splits = split_three_ways(scan(self.root, self.clean), self.val_fraction, self.test_fraction)
        return self._splits

    def blocks(self, split: str) -> None:
        return None
