"""The model zoo: the suite's own trained weights, named ``zoo:<name>`` wherever a checkpoint path goes.

Every entry of ``denoise/zoo/index.yaml`` is a card: the recipe and overrides that train it, the data, steps,
GPU and minutes it took, the scores it reproduces (with their convention) and the sha256 of its weights.
The weights are a file beside the index (shipped in the repository, at most 10 MB) or a URL, downloaded once
into ``~/.cache/denoise/zoo`` (``DENOISE_CACHE`` moves it) and refused when its sha256 differs. An entry
whose weights are not trained yet keeps its recipe and says how to train it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from denoise.data.fetch import FetchError, download
from denoise.data.files import sha256_of

PREFIX = "zoo:"
#: the index shipped with the package; ``DENOISE_ZOO`` names another (a team's own zoo)
INDEX = Path(__file__).resolve().parent / "index.yaml"


class ZooError(ValueError):
    """A zoo name that is unknown, untrained, or whose weights do not match their sha256."""


def index_path() -> Path:
    return Path(os.environ.get("DENOISE_ZOO", INDEX)).expanduser()


#: a card's name: letters, digits, ``.``, ``_``, ``-`` (it becomes part of a file name in the cache)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
#: the largest weights file the zoo downloads (a card's own ``bytes`` may say less)
MAX_DOWNLOAD_BYTES = 2 << 30


def entries() -> dict[str, dict[str, Any]]:
    """Every card of the zoo, by name; a malformed index (not YAML, not a mapping of cards, a name that is not a
    plain file name) is an error naming the index."""
    path = index_path()
    if not path.is_file():
        raise ZooError(f"the zoo index {path} does not exist (DENOISE_ZOO names another)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ZooError(f"the zoo index {path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise ZooError(f"{path}: expected a 'models:' mapping of name -> card")
    for name, card in data["models"].items():
        if not isinstance(name, str) or not NAME.match(name):
            raise ZooError(f"{path}: the card name {name!r} is not allowed (letters, digits, '.', '_', '-' only)")
        if not isinstance(card, dict):
            raise ZooError(f"{path}: the card {name!r} is a {type(card).__name__}; expected a mapping of fields")
    return data["models"]


def _checked_sha256(card: dict[str, Any], text: str) -> str:
    expected = card.get("sha256")
    if not isinstance(expected, str) or not SHA256.match(expected.lower()):
        raise ZooError(f"{text}: its card in {index_path()} needs the sha256 of its weights (64 hex digits)")
    return expected.lower()


def _shipped_file(card: dict[str, Any], text: str) -> Path:
    """A card's ``file``: relative to the index, inside the index's folder (no absolute path, no ``..``)."""
    relative = Path(str(card["file"]))
    folder = index_path().parent.resolve()
    path = (folder / relative).resolve()
    if relative.is_absolute() or ".." in relative.parts or not path.is_relative_to(folder):
        raise ZooError(f"{text}: its file {card['file']!r} must be a path inside {folder} (beside the index)")
    return path


def cache_dir() -> Path:
    return Path(os.environ.get("DENOISE_CACHE", Path.home() / ".cache" / "denoise")).expanduser() / "zoo"


def sha256(path: Path) -> str:
    return sha256_of(path)


def _download(url: str, expected: str, target: Path, name: str) -> Path:
    """``url`` into ``target`` once by denoise-data's download (http(s) only, resumable; the file becomes the
    target only whole and with the right sha256; at most :data:`MAX_DOWNLOAD_BYTES`)."""
    try:
        download(url, target, expected, None, max_bytes=MAX_DOWNLOAD_BYTES, source="zoo")
    except FetchError as err:
        raise ZooError(f"{PREFIX}{name}: {err}") from err
    return target


def resolve(name_or_path: str | Path) -> Path:
    """The file behind a checkpoint argument: ``zoo:<name>`` -> its weights (verified, downloaded once); anything
    else is returned as a path."""
    text = str(name_or_path)
    if not text.startswith(PREFIX):
        return Path(text).expanduser()
    name = text[len(PREFIX) :]
    if not NAME.match(name):
        raise ZooError(f"{text}: a zoo name has letters, digits, '.', '_', '-' only")
    cards = entries()
    if name not in cards:
        raise ZooError(f"{text} is not in the zoo; expected one of {sorted(cards)} (denoise-models --zoo lists them)")
    card = cards[name]
    if card.get("file"):
        expected = _checked_sha256(card, text)
        path = _shipped_file(card, text)
        if not path.is_file():
            raise ZooError(f"{text}: its weights file {path} is missing from this checkout")
        if sha256(path) != expected:
            raise ZooError(f"{text}: {path} does not match the zoo's sha256 {expected}; refused")
        return path
    if card.get("url"):
        expected = _checked_sha256(card, text)
        target = cache_dir() / f"{name}-{expected[:12]}.ckpt"
        if target.is_file() and sha256(target) == expected:
            return target
        return _download(str(card["url"]), expected, target, name)
    recipe = card.get("recipe", "its recipe")
    raise ZooError(f"{text} has no weights yet (not trained): train it with `python train.py {recipe}`")
