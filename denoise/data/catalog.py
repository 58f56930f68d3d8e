"""denoise-data's catalog (``catalog.yaml``): every dataset and weights file the suite knows, where it is published,
its terms, where it lands under ``paths.data_dir``, and whether it is in place; the downloads are
:mod:`denoise.data.fetch`'s."""

from __future__ import annotations

import os
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

CATALOG = Path(__file__).with_name("catalog.yaml")
#: another catalog (a mirror, a team's own data): the same format
CATALOG_ENV = "DENOISE_DATA_CATALOG"


class CatalogError(ValueError):
    """A catalog that cannot be read, or an entry that is not one of its kinds."""


class FetchError(CatalogError):
    """A download that failed, or a file or archive that does not match the catalog."""


@dataclass(frozen=True)
class Entry:
    """One catalog entry: what it is, its terms, where it is published, and where it lands."""

    name: str
    what: str
    terms: str
    page: str
    target: str
    kind: str  # files | archive | file | manual
    spec: dict[str, Any] = field(default_factory=dict)

    def bytes(self) -> int | None:
        if self.kind == "files":
            return sum(int(size) for size, _ in self.spec["files"].values())
        if self.kind in ("archive", "file"):
            value = self.spec[self.kind].get("bytes")
            return None if value is None else int(value)
        return None


def escapes(name: str) -> bool:
    """Whether a name read from a file (a catalog's file or target, an archive member) would land outside the
    folder it is joined to: empty, absolute, a drive or a backslash path, a ``..`` part, a NUL."""
    return (
        not name
        or PurePosixPath(name).is_absolute()
        or ".." in PurePosixPath(name).parts
        or "\\" in name
        or "\x00" in name
        or re.match(r"^[A-Za-z]:", name) is not None
    )


def catalog_path() -> Path:
    return Path(os.environ.get(CATALOG_ENV, CATALOG)).expanduser()


def catalog() -> dict[str, Entry]:
    """Every entry of the catalog (``DENOISE_DATA_CATALOG``, else the shipped one), by name."""
    path = catalog_path()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise CatalogError(f"the data catalog {path} cannot be read: {err}") from None
    entries = {}
    for name, spec in (data.get("entries") or {}).items():
        kinds = [kind for kind in ("files", "archive", "file", "manual") if kind in spec]
        if len(kinds) != 1 or not re.match(r"^[a-z0-9][a-z0-9_]*$", str(name)):
            raise CatalogError(f"{path}: entry {name!r} needs exactly one of files/archive/file/manual")
        target = str(spec.get("target", f"{name}/"))
        if escapes(target):
            raise CatalogError(
                f"{path}: entry {name!r} has target {target!r}: expected a folder inside the data folder"
            )
        outside = [file for file in (spec.get("files") or {}) if escapes(str(file))]
        if outside:
            raise CatalogError(
                f"{path}: entry {name!r} names the file {outside[0]!r}, which would land outside its folder "
                f"{target}: expected plain names inside it (no absolute path, no '..'); the catalog is refused"
            )
        entries[str(name)] = Entry(str(name), str(spec.get("what", "")), str(spec.get("terms", "")),
                                   str(spec.get("page", "")), target, kinds[0], dict(spec))  # fmt: skip
    return entries


def default_data_dir() -> Path:
    """``paths.data_dir``'s own default: ``DENOISE_DATA``, else ``data/`` under ``DENOISE_ROOT`` (else here)."""
    if os.environ.get("DENOISE_DATA"):
        return Path(os.environ["DENOISE_DATA"]).expanduser()
    return Path(os.environ.get("DENOISE_ROOT", ".")).expanduser() / "data"


def manual_text(entry: Entry, data_dir: Path) -> str:
    steps = str(entry.spec["manual"]).replace("DATA/", f"{data_dir}/")
    return (
        f"{entry.name}: not fetched automatically (no direct link, or a step by hand). {steps}\n"
        f"  (published at {entry.page}; terms: {entry.terms})"
    )


def url_file_name(url: str) -> str:
    """The name a download from ``url`` lands under: the last part of its path."""
    return PurePosixPath(urllib.parse.urlsplit(url).path).name


def present(entry: Entry, data_dir: Path) -> bool:
    """Whether the entry is in place: every file of a ``files`` entry, else a non-empty target."""
    folder = data_dir / entry.target
    if entry.kind == "files":
        return all((folder / name).is_file() for name in entry.spec["files"])
    if entry.kind == "file":
        return (folder / url_file_name(entry.spec["file"]["url"])).is_file()
    return folder.is_dir() and any(folder.iterdir())


def hint_for(folder: Path) -> str:
    """For a missing folder that is a catalog entry's (``.../set12``), the command that fetches it; else ''."""
    try:
        entries = catalog()
    except CatalogError:
        return ""
    for entry in entries.values():
        if entry.kind != "file" and PurePosixPath(entry.target).name == folder.name:
            if entry.kind == "manual":
                return f"; {entry.name} has no direct link: `denoise-data get {entry.name}` says where to get it"
            return f"; fetch it with `denoise-data get {entry.name} --data-dir {folder.parent}`"
    return ""
