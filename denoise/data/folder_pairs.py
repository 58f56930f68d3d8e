"""Any folder of pairs: the user's own noisy and clean images, matched by file name.

``noisy_dir/x.png`` pairs with ``clean_dir/x.png`` (any supported suffix on either side, matched by stem);
a file with no partner is an error naming it. Each pair is its own split group; ``val_fraction`` and
``test_fraction`` hold out every k-th pair in name order (``test_fraction: 1.0`` scores all of them).
"""

from __future__ import annotations

from pathlib import Path

from denoise.data.io import list_images
from denoise.data.pairs import ImagePair, split_three_ways

#: how many bad files an error lists before it says "and N more"
LISTED = 20


def _listing(items: list[str]) -> str:
    more = f"\n  ... and {len(items) - LISTED} more" if len(items) > LISTED else ""
    return "\n  " + "\n  ".join(items[:LISTED]) + more


def _by_stem(folder: str | Path, key: str) -> dict[str, Path]:
    """The folder's images by stem; two files with one stem (``x.png`` and ``x.jpg``) are an error naming both,
    since either could be the partner."""
    found: dict[str, list[Path]] = {}
    for path in list_images(folder, key=key):
        found.setdefault(path.stem, []).append(path)
    clashes = [" and ".join(str(p) for p in paths) for paths in found.values() if len(paths) > 1]
    if clashes:
        raise ValueError(
            f"{key}={folder}: {len(clashes)} name(s) appear with two extensions, so their partners are ambiguous "
            f"(keep one file of each name):{_listing(clashes)}"
        )
    return {stem: paths[0] for stem, paths in found.items()}


def match_by_name(noisy_dir: str | Path, clean_dir: str | Path) -> list[ImagePair]:
    """Every noisy file with its clean partner of the same stem; files without a partner are listed all at once."""
    noisy = _by_stem(noisy_dir, "data.noisy_dir")
    clean = _by_stem(clean_dir, "data.clean_dir")
    lonely = [f"{noisy[s]} (no {s}.* in data.clean_dir)" for s in sorted(set(noisy) - set(clean))]
    lonely += [f"{clean[s]} (no {s}.* in data.noisy_dir)" for s in sorted(set(clean) - set(noisy))]
    if lonely:
        raise FileNotFoundError(
            f"{len(lonely)} file(s) in data.noisy_dir={noisy_dir} / data.clean_dir={clean_dir} have no partner "
            f"(pairs are matched by file name without extension):{_listing(lonely)}"
        )
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
