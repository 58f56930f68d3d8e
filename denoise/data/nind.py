"""NIND, the Natural Image Noise Dataset (Brummer, De Vleeschouwer, CVPR Workshops 2019), in its published
layout; this file knows only where NIND keeps its files.

``<scene>/NIND_<scene>_ISO<token>.<png|jpg>`` with tokens such as ``200``, ``6400``, ``H1``..``H4`` and
duplicates such as ``200-2``. The clean target is the scene's lowest numeric ISO (its duplicates are
alternates, not noisy inputs); ``H`` tokens sort above every number; every other ISO pairs with the clean
image. 8-bit JPEG and 16-bit PNG are scaled by 255 and 65535. The authors' test scenes form the test split;
the rest is split by scene.
"""

from __future__ import annotations

import re
from pathlib import Path

from denoise.data.pairs import ImagePair, split_by_group

PUBLISHED = "https://commons.wikimedia.org/wiki/Natural_Image_Noise_Dataset"
LAYOUT = f"""Expected NIND under data.root:
  <root>/<scene>/NIND_<scene>_ISO<token>.png or .jpg, e.g. <root>/MuseeL-Bobo/NIND_MuseeL-Bobo_ISO200.jpg
  tokens: 200, 6400, H1..H4, duplicates 200-2; the lowest numeric ISO of a scene is its clean image
NIND is published at {PUBLISHED}."""
TEST_SCENES = (
    "ursulines-red", "stefantiek", "ursulines-building", "MuseeL-Bobo", "CourtineDeVillersDebris",
    "MuseeL-Bobo-C500D", "Pen-pile",
)  # fmt: skip
FILE = re.compile(r"^NIND_(?P<scene>.+)_ISO(?P<base>\d+|H\d+)(?:-(?P<dup>\d+))?\.(?:png|jpe?g)$", re.IGNORECASE)


def iso_order(base: str) -> tuple[int, int]:
    """Numbers first, in value order; then H1, H2, ... (the camera's extended high ISOs)."""
    return (1, int(base[1:])) if base.upper().startswith("H") else (0, int(base))


def scan_scene(folder: Path) -> list[ImagePair]:
    images = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        match = FILE.match(path.name)
        if match is None:
            continue
        if match.group("scene") != folder.name:
            raise ValueError(f"{path}: the file names scene {match.group('scene')!r} but sits in {folder.name!r}")
        images.append((iso_order(match.group("base")), match.group("dup"), path, match))
    numeric = [item for item in images if item[0][0] == 0]
    if not numeric:
        raise FileNotFoundError(f"NIND scene {folder} has no numeric-ISO image to serve as the clean target")
    clean_iso = min(item[0] for item in numeric)
    clean = min(
        (item for item in numeric if item[0] == clean_iso), key=lambda item: (item[1] is not None, item[2].name)
    )
    noisy = [item for item in images if item[0] != clean_iso]
    if not noisy:
        raise FileNotFoundError(f"NIND scene {folder} has only its clean ISO; no noisy image to pair with it")
    pairs = []
    for _order, dup, path, match in noisy:
        iso = match.group("base") + (f"-{dup}" if dup else "")
        pairs.append(ImagePair(noisy=path, clean=(clean[2],), name=f"{folder.name}/ISO{iso}", dataset="nind",
                               group=folder.name, meta={"scene": folder.name, "iso": iso,
                                                        "clean_iso": clean[3].group("base")}))  # fmt: skip
    return pairs


def scan(root: str | Path) -> list[ImagePair]:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data.root={root}: no such folder.\n{LAYOUT}")
    scenes = sorted(p for p in root.iterdir() if p.is_dir() and any(FILE.match(f.name) for f in p.iterdir()))
    if not scenes:
        raise FileNotFoundError(f"data.root={root} holds no NIND scene folders.\n{LAYOUT}")
    return [pair for scene in scenes for pair in scan_scene(scene)]


class NIND:
    """The NIND layout: the authors' test scenes, the rest split by scene."""

    name = "nind"

    def __init__(self, root: str, test_scenes: list[str] | None = None, val_fraction: float = 0.1) -> None:
        self.root, self.val_fraction = root, val_fraction
        self.test_scenes = list(TEST_SCENES if test_scenes is None else test_scenes)
        self._splits: dict[str, list[ImagePair]] | None = None

    def splits(self) -> dict[str, list[ImagePair]]:
        if self._splits is None:
            pairs = scan(self.root)
            test = [p for p in pairs if p.group in self.test_scenes]
            train, val = split_by_group([p for p in pairs if p.group not in self.test_scenes], self.val_fraction)
            self._splits = {"train": train, "val": val, "test": test}
        return self._splits

    def blocks(self, split: str) -> None:
        return None
