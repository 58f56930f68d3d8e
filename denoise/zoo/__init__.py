"""The model zoo: the suite's own trained weights, named ``zoo:<name>`` wherever a checkpoint path goes.

Every entry of ``denoise/zoo/index.yaml`` is a card: the recipe and overrides that train it, the data, steps,
GPU and minutes it took, the scores it reproduces (with their convention) and the sha256 of its weights.
The weights are a file beside the index (shipped in the repository, at most 10 MB) or a URL, downloaded once
into ``~/.cache/denoise/zoo`` (``DENOISE_CACHE`` moves it) and refused when its sha256 differs. An entry
whose weights are not trained yet keeps its recipe and says how to train it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import yaml

PREFIX = "zoo:"
#: the index shipped with the package; ``DENOISE_ZOO`` names another (a team's own zoo)
INDEX = Path(__file__).resolve().parent / "index.yaml"


class ZooError(ValueError):
    """A zoo name that is unknown, untrained, or whose weights do not match their sha256."""


def index_path() -> Path:
    return Path(os.environ.get("DENOISE_ZOO", INDEX)).expanduser()


def entries() -> dict[str, dict[str, Any]]:
    """Every card of the zoo, by name."""
    path = index_path()
    if not path.is_file():
        raise ZooError(f"the zoo index {path} does not exist (DENOISE_ZOO names another)")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data.get("models"), dict):
        raise ZooError(f"{path}: expected a 'models:' mapping of name -> card")
    return data["models"]


def cache_dir() -> Path:
    return Path(os.environ.get("DENOISE_CACHE", Path.home() / ".cache" / "denoise")).expanduser() / "zoo"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, expected: str, target: Path, name: str) -> Path:
    """``url`` into ``target`` once, through a temporary file that becomes the target only if its sha256 is right."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, suffix=".part") as part:
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                shutil.copyfileobj(response, part)
        except OSError as err:
            Path(part.name).unlink(missing_ok=True)
            raise ZooError(f"{PREFIX}{name}: could not download {url}: {err}") from err
    got = sha256(Path(part.name))
    if got != expected:
        Path(part.name).unlink(missing_ok=True)
        raise ZooError(
            f"{PREFIX}{name}: the file at {url} has sha256 {got}, not the zoo's {expected}; refused (not cached)"
        )
    os.replace(part.name, target)
    return target


def resolve(name_or_path: str | Path) -> Path:
    """The file behind a checkpoint argument: ``zoo:<name>`` -> its weights (verified, downloaded once); anything
    else is returned as a path."""
    text = str(name_or_path)
    if not text.startswith(PREFIX):
        return Path(text).expanduser()
    name = text[len(PREFIX) :]
    cards = entries()
    if name not in cards:
        raise ZooError(f"{text} is not in the zoo; expected one of {sorted(cards)} (denoise-models --zoo lists them)")
    card = cards[name]
    expected = card.get("sha256")
    if card.get("file"):
        path = index_path().parent / card["file"]
        if not path.is_file():
            raise ZooError(f"{text}: its weights file {path} is missing from this checkout")
        if expected and sha256(path) != expected:
            raise ZooError(f"{text}: {path} does not match the zoo's sha256 {expected}; refused")
        return path
    if card.get("url"):
        if not expected:
            raise ZooError(f"{text}: a URL entry needs its sha256 in {index_path()}")
        target = cache_dir() / f"{name}-{expected[:12]}.ckpt"
        if target.is_file() and sha256(target) == expected:
            return target
        return _download(card["url"], expected, target, name)
    recipe = card.get("recipe", "its recipe")
    raise ZooError(f"{text} has no weights yet (not trained): train it with `python train.py {recipe}`")
