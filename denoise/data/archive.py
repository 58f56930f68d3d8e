"""Unpacking a downloaded archive as untrusted input: every member's name checked to stay inside the folder it
lands in, and every byte counted, so that a small archive cannot fill the disk or the memory (an archive bomb).

Members are streamed a megabyte at a time (never read whole). An archive is refused, with nothing kept, when it
has more than :data:`MAX_MEMBERS` members (``DENOISE_MAX_MEMBERS`` replaces it), or when its members would unpack
to more than its limit: the catalog entry's own ``unpacked_bytes`` where it states one, else :data:`UNPACK_RATIO`
times the archive's size and at most :data:`MAX_UNPACKED_BYTES` (``DENOISE_MAX_UNPACKED_GB`` replaces both). The
sizes the members declare are added up before anything is written; the bytes actually written are counted too,
since a zip may declare less than it holds.
"""

from __future__ import annotations

import gzip
import os
import re
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from denoise.data.catalog import FetchError, escapes
from denoise.data.files import atomic_open

#: the most members an archive may have (the catalog's largest, BSDS500, has about 1,500)
MAX_MEMBERS = 100_000
#: how many times its own size an archive may unpack to (photos compress little; runs of zeros 1000-fold)
UNPACK_RATIO = 100
#: the most an archive may unpack to without a limit of its own
MAX_UNPACKED_BYTES = 16 << 30
UNPACKED_ENV, MEMBERS_ENV = "DENOISE_MAX_UNPACKED_GB", "DENOISE_MAX_MEMBERS"
_BLOCK = 1 << 20


class ArchiveError(FetchError):
    """An archive that is refused: a member outside its folder, a link, a bomb, or not an archive at all."""


#: what the readers raise for an archive whose bytes are not what its headers say (cut off, crafted, corrupt)
_CORRUPT = (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)

#: one member: its name, whether it is a plain file, its declared size, and how to open its bytes as a stream
Member = tuple[str, bool, int, Callable[[], IO[bytes]]]


def member_limit() -> int:
    """The most members an archive may have: :data:`MAX_MEMBERS`, or ``DENOISE_MAX_MEMBERS``."""
    value = os.environ.get(MEMBERS_ENV)
    if value is None:
        return MAX_MEMBERS
    if not value.isdigit() or int(value) < 1:
        raise ArchiveError(f"{MEMBERS_ENV}={value!r}: expected a positive whole number, e.g. {MAX_MEMBERS}")
    return int(value)


def unpack_limit(archive: Path, stated: int | None = None) -> int:
    """The most ``archive`` may unpack to: ``stated`` (the catalog's ``unpacked_bytes``), else the ratio of its
    size within the absolute cap; ``DENOISE_MAX_UNPACKED_GB`` replaces both."""
    value = os.environ.get(UNPACKED_ENV)
    if value is not None:
        try:
            limit = float(value)
        except ValueError:
            limit = -1.0
        if not limit > 0:
            raise ArchiveError(f"{UNPACKED_ENV}={value!r}: expected a positive number of gigabytes, e.g. 32")
        return int(limit * 1e9)
    if stated is not None:
        return int(stated)
    return min(MAX_UNPACKED_BYTES, UNPACK_RATIO * archive.stat().st_size)


def _too_large(archive: Path, limit: int) -> ArchiveError:
    return ArchiveError(
        f"{archive}: its members would unpack to more than {limit:,} bytes (the limit for this archive: "
        f"{UNPACK_RATIO} times its size, at most {MAX_UNPACKED_BYTES >> 30} GiB, or the catalog's unpacked_bytes); "
        f"refused as an archive bomb, nothing kept. {UNPACKED_ENV}=<gigabytes> raises the limit"
    )


def members(archive: Path) -> Iterator[Member]:
    """Every member of a tar or zip archive, read lazily (a tar's headers as it goes)."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as handle:
            for info in handle.infolist():
                mode = info.external_attr >> 16
                plain = not info.is_dir() and (mode == 0 or (mode & 0o170000) in (0, 0o100000))
                yield info.filename, plain, info.file_size, lambda info=info: handle.open(info)
        return
    try:
        handle = tarfile.open(archive)  # noqa: SIM115 (closed by the with below, after the error check)
    except tarfile.TarError as err:
        raise ArchiveError(f"{archive} is neither a zip nor a tar archive ({err})") from None
    with handle:
        for member in handle:

            def stream(member: tarfile.TarInfo = member) -> IO[bytes]:
                opened = handle.extractfile(member)
                assert opened is not None  # a plain file: only those are opened
                return opened

            yield member.name, member.isfile(), member.size, stream


def choose(archive: Path, pattern: str, exclude_stems: set[str], limit: int) -> list[str]:
    """The members to unpack, after every member's name, kind, count and declared size has been checked: one
    member that would land outside, one link among the chosen, too many members or too many bytes refuse the
    whole archive before anything is written."""
    regex, most = re.compile(pattern), member_limit()
    chosen, declared = [], 0
    for count, (name, plain, size, _) in enumerate(members(archive), start=1):
        declared += max(size, 0)
        if count > most:
            raising = f"{MEMBERS_ENV} raises the limit"
            raise ArchiveError(f"{archive} has more than {most:,} members; refused, nothing kept ({raising})")
        if declared > limit:
            raise _too_large(archive, limit)
        if escapes(name):
            raise ArchiveError(f"{archive}: member {name!r} would land outside the data folder; the archive is refused")
        if regex.search(name):
            if not plain:
                raise ArchiveError(f"{archive}: member {name!r} is a link or a special file; the archive is refused")
            if PurePosixPath(name).stem not in exclude_stems:
                chosen.append(name)
    if not chosen:
        raise ArchiveError(f"{archive} holds no member matching {pattern!r}: not the archive the catalog describes")
    names = [PurePosixPath(name).name for name in chosen]
    if len(set(names)) != len(names):
        raise ArchiveError(f"{archive}: two chosen members share a file name; refused")
    return chosen


def unpack(
    archive: Path, folder: Path, pattern: str, exclude_stems: set[str] = frozenset(), stated: int | None = None
) -> list[Path]:
    """The members of ``archive`` whose names match ``pattern`` (less ``exclude_stems``), flattened into
    ``folder``, each streamed and counted against the archive's limit (:func:`unpack_limit`); a refused archive
    leaves none of its files behind."""
    limit = unpack_limit(archive, stated)
    try:
        wanted = set(choose(archive, pattern, exclude_stems, limit))
    except _CORRUPT as err:
        raise ArchiveError(f"{archive} is corrupt or cut off ({type(err).__name__}: {err}); refused") from None
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    total = 0
    try:
        for name, _, _, stream in members(archive):
            if name not in wanted:
                continue
            target = folder / PurePosixPath(name).name
            with stream() as source, atomic_open(target) as handle:
                for block in iter(lambda source=source: source.read(_BLOCK), b""):
                    total += len(block)
                    if total > limit:  # more than the members declared
                        raise _too_large(archive, limit)
                    handle.write(block)
            written.append(target)
    except BaseException as err:
        for path in written:
            path.unlink(missing_ok=True)
        if isinstance(err, _CORRUPT):
            raise ArchiveError(f"{archive} is corrupt ({type(err).__name__}: {err}); refused, nothing kept") from None
        raise
    return written
