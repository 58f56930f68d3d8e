"""Any folder of pairs: the user's own noisy and clean images, matched by file name.

``noisy_dir/x.png`` pairs with ``clean_dir/x.png`` (any supported suffix on either side, matched by stem);
a file with no partner is an error naming it. Each pair is its own split group; ``val_fraction`` and
``test_fraction`` hold out every k-th pair in name order (``test_fraction: 1.0`` scores all of them).
"""

from __future__ import annotations

from pathlib import Path

from denoise.data.io import list_images
from denoise.data.pairs import ImagePair, split_three_ways


def match_by_name(noisy_dir: str | Path, clean_dir: str | Path) -> list[ImagePair]:
    noisy = {p.stem: p for p in list_images(noisy_dir, key="data.noisy_dir")}
    clean = {p.stem: p for p in list_images(clean_dir, key="data.clean_dir")}
    for stem in sorted(set(noisy) - set(clean)):
        raise FileNotFoundError(f"{noisy[stem]} has no clean partner: no {stem}.* in data.clean_dir={clean_dir}")
    for stem in sorted(set(clean) - set(noisy)):
        raise FileNotFoundError(f"{clean[stem]} has no noisy partner: no {stem}.* in data.noisy_dir={noisy_dir}")
    return [
        ImagePair(noisy=noisy[s], clean=(clean[s],), name=noisy[s].name, dataset="paired", group=s)
        for s in sorted(noisy)
    ]


class FolderPairs:
    """The ``data=paired`` layout."""

    name = "paired"

    def __init__(self, noisy_dir: str, clean_dir: str, val_fraction: float = 0.1, test_fraction: float = 0.1) -> None:
        self.noisy_dir, self.clean_dir = noisy_dir, clean_dir
        self.val_fraction, self.test_fraction = val_fraction, test_fraction

    def splits(self) -> dict[str, list[ImagePair]]:
        pairs = match_by_name(self.noisy_dir, self.clean_dir)
        if self.test_fraction >= 1.0:
            return {"train": [], "val": pairs, "test": pairs}
        splits = split_three_ways(pairs, self.val_fraction, self.test_fraction)
        return {**splits, "val": splits["val"] or splits["test"]}

    def blocks(self, split: str) -> None:
        return None
