"""``denoise-data``: the standard sets and the authors' weights fetched from where they are published, checked
file by file against the sha256 of ``catalog.yaml``, and laid out under ``paths.data_dir`` as the configs expect.

A download goes to ``<file>.download`` beside its target and resumes from there (an HTTP Range request) after an
interruption; only a file whose size and sha256 match becomes the target (renamed whole). A source that serves a
different file (a wrong checksum, a truncated copy) is refused and nothing lands. Archives are unpacked member by
member into the entry's folder, streamed and bounded (:mod:`denoise.data.archive`): an archive with a member that
would land outside it (an absolute name, a ``..``, a link or a device), too many members or too many bytes is
refused with nothing kept. A ``files`` entry's names are checked the same way. Entries without a direct link (SIDD,
NIND, RENOIR, cloud drives) say where to download them by hand and where to put them.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from denoise.data.archive import unpack
from denoise.data.catalog import (
    Entry,
    FetchError,
    catalog,
    escapes,
    manual_text,
    url_file_name,
)
from denoise.data.files import fsync_folder, sha256_of

#: what a download may hold at most when its catalog entry gives no size
MAX_BYTES = 8 << 30
DOWNLOAD_SUFFIX = ".download"

Progress = Callable[[int], None]


class ManualDownloadError(FetchError):
    """An entry without a direct link: the message says where to download it by hand and where to put it."""


def download(
    url: str, target: Path, sha256: str | None, size: int | None, progress: Progress | None = None,
    max_bytes: int = MAX_BYTES, source: str = "catalog",
) -> str:  # fmt: skip
    """``url`` into ``target``, resuming ``target.download`` where an earlier try stopped; returns the sha256.
    The file lands only whole and matching (``sha256``/``size`` where known; at most ``max_bytes`` without a size).
    ``source``: whose checksum a mismatch names (the catalog's, the zoo's)."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise FetchError(f"its url {url!r} is not http(s)")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + DOWNLOAD_SUFFIX)
    have = partial.stat().st_size if partial.is_file() else 0
    if size is not None and have > size:
        partial.unlink()
        have = 0
    limit = size if size is not None else max_bytes
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            if have and response.status != 206:  # the server ignored the range: start again
                have = 0
            length = response.headers.get("Content-Length")
            promised = have + int(length) if length and length.isdigit() else None  # what the server says it sends
            if progress and have:
                progress(have)
            have = _append(response, partial, have, limit, progress, url)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing after what we have: the source holds no more
            partial.unlink()
            raise FetchError(
                f"{url}: the source holds only {have:,} bytes of the {size or 0:,} expected (a truncated copy); "
                "refused, nothing kept"
            ) from None
        raise FetchError(f"{url}: HTTP {err.code} {err.reason}") from None
    except (OSError, http.client.HTTPException) as err:
        if not partial.is_file() or partial.stat().st_size == 0:  # nothing arrived: no part to resume from
            partial.unlink(missing_ok=True)
            raise FetchError(f"{url}: could not download ({type(err).__name__}: {err}); check the network") from None
        raise FetchError(
            f"{url}: the download stopped after {partial.stat().st_size:,} bytes ({type(err).__name__}: {err}); the "
            f"part is kept in {partial}: run the same command again to resume"
        ) from None
    if (size is not None and have < size) or (promised is not None and have < promised):
        size = size if size is not None else promised
        raise FetchError(
            f"{url}: the download ended after {have:,} of {size or 0:,} bytes; the part is kept in {partial}: run the "
            "same command again to resume"
        )
    digest = sha256_of(partial)
    if sha256 is not None and digest != sha256.lower():
        partial.unlink()
        raise FetchError(f"{url}: sha256 {digest}, not the {source}'s {sha256}; refused, nothing kept")
    os.replace(partial, target)
    fsync_folder(target.parent)
    return digest


def _append(response: Any, partial: Path, have: int, limit: int, progress: Progress | None, url: str) -> int:
    """The response's body appended to ``partial``, which holds ``have`` bytes; the bytes it holds after. A body
    past ``limit`` is not the file expected: refused, and the part removed (nothing worth resuming)."""
    with partial.open("ab" if have else "wb") as handle:
        for block in iter(lambda: response.read(1 << 20), b""):
            have += len(block)
            if have > limit:
                break
            handle.write(block)
            if progress:
                progress(len(block))
    if have > limit:
        partial.unlink()
        raise FetchError(f"{url} is larger than the {limit:,} bytes expected; refused, nothing kept")
    return have


def get(entry: Entry, data_dir: Path, unverified: bool = False, progress: Progress | None = None,
        entries: dict[str, Entry] | None = None) -> list[str]:  # fmt: skip
    """Fetch ``entry`` into ``data_dir``; returns what it did, a line per step (files already in place and
    matching are kept). A fetch that fails leaves no folder it made empty behind (an empty ``set12/`` would turn
    "does not exist; fetch it with ..." into "holds no images")."""
    made = [path for path in (data_dir, data_dir / ".downloads", data_dir / entry.target) if not path.exists()]
    try:
        return _get(entry, data_dir, unverified, progress, entries)
    except BaseException:
        for path in reversed(made):  # the deepest first; only folders still empty
            with contextlib.suppress(OSError):
                path.rmdir()
        raise


def _get(
    entry: Entry, data_dir: Path, unverified: bool, progress: Progress | None, entries: dict[str, Entry] | None
) -> list[str]:
    folder = data_dir / entry.target
    if entry.kind == "manual":
        raise ManualDownloadError(manual_text(entry, data_dir))
    if entry.kind == "files":
        fetched = 0
        base = str(entry.spec["base_url"])
        for name, (size, sha256) in entry.spec["files"].items():
            if escapes(str(name)):  # an entry built elsewhere than catalog(), which checks this too
                raise FetchError(f"{entry.name}: the file {name!r} would land outside {folder}; refused")
            target = folder / str(name)
            if target.is_file() and target.stat().st_size == int(size) and sha256_of(target) == sha256:
                if progress:
                    progress(int(size))
                continue
            download(base + urllib.parse.quote(str(name)), target, sha256, int(size), progress)
            fetched += 1
        return [f"{entry.name}: {len(entry.spec['files'])} files in {folder} ({fetched} fetched, sha256 checked)"]
    source = entry.spec[entry.kind]
    sha256 = source.get("sha256")
    if sha256 is None and not unverified:
        raise FetchError(
            f"{entry.name} is published without a checksum that this catalog could pin ({source['url']}): fetch it "
            "with --unverified (its sha256 is printed, to pin in a catalog of your own)"
        )
    size = None if source.get("bytes") is None else int(source["bytes"])
    file_name = url_file_name(source["url"])
    if entry.kind == "file":
        digest = download(source["url"], folder / file_name, sha256, size, progress)
        return [f"{entry.name}: {folder / file_name} (sha256 {digest}{'' if sha256 else ', unverified'})"]
    archive = data_dir / ".downloads" / file_name
    digest = download(source["url"], archive, sha256, size, progress)
    exclude: set[str] = set()
    if source.get("exclude_stems_of"):
        other = (entries or catalog())[source["exclude_stems_of"]]
        exclude = {PurePosixPath(name).stem for name in other.spec.get("files", {})}
    stated = source.get("unpacked_bytes")
    try:
        written = unpack(archive, folder, str(source["members"]), exclude, None if stated is None else int(stated))
    finally:  # unpacked or refused, the archive itself is not kept
        archive.unlink(missing_ok=True)
    checked = "" if sha256 else ", unverified"
    return [f"{entry.name}: {len(written)} files in {folder} (archive sha256 {digest}{checked})"]
