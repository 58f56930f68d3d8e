"""Writing files so that they land whole or not at all, and never over what a user already has.

Every file the suite writes (checkpoints, results, plots, predictions, exports, the patch store) goes through
:func:`atomic_open`: the bytes are written to a temporary file *beside* the target (same folder, so the same
filesystem), flushed and fsynced, then renamed over the target in one step, and the folder is fsynced. A
``kill -9`` or a full disk at any byte leaves the previous file as it was (or no file), never a truncated one.
A temporary file in ``$TMPDIR`` moved into place would not do: across filesystems (node-local temp, network
scratch) a move is a copy into the target, which a kill cuts short.

``overwrite=False`` makes the final step a hard link, which fails if the target appeared meanwhile: an output
never replaces a file silently. :func:`refuse_existing` lists every such file before any work starts.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

#: how temporary files beside their targets are named (``.<name>.<host>.<pid>.<random>.partial``), so that they are
#: recognisable, and so that a later run can tell those of a process that is gone from those of one still writing
PARTIAL_SUFFIX = ".partial"
_PARTIAL = re.compile(r"\.(?P<owner>[A-Za-z0-9-]+\.\d+)\.[0-9a-f]{8}" + re.escape(PARTIAL_SUFFIX) + "$")


class OutputExistsError(FileExistsError):
    """An output would replace a file the user already has, without the flag that allows it."""


class UnwritableError(PermissionError):
    """A folder the suite must write into cannot be written (read-only, a file, no permission)."""


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    with contextlib.suppress(OSError):
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def owner_tag() -> str:
    """``<host>.<pid>`` of this process, as temporary files and folders carry it (the host's name in letters, digits
    and '-')."""
    return f"{re.sub(r'[^A-Za-z0-9-]', '-', socket.gethostname()) or 'host'}.{os.getpid()}"


def left_by_dead_process(owner: str) -> bool:
    """Whether ``owner`` (an :func:`owner_tag`) is a process of this host that no longer runs. Another host's
    processes cannot be seen from here, so their files are never taken for dead; nor are this process's own."""
    host, _, pid = owner.rpartition(".")
    here, _, own_pid = owner_tag().rpartition(".")
    if host != here or not pid.isdigit() or pid == own_pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, and another user's
        return False
    return False


def partial_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.{owner_tag()}.{secrets.token_hex(4)}{PARTIAL_SUFFIX}")


def _no_clobber(partial: Path, target: Path) -> None:
    """Move ``partial`` to ``target`` unless ``target`` exists (atomically, where the filesystem has hard links)."""
    try:
        os.link(partial, target)
    except FileExistsError:
        raise OutputExistsError(f"{target} already exists; it was not replaced") from None
    except OSError as err:  # no hard links here (some network and FAT filesystems): check, then rename
        if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        if target.exists():
            raise OutputExistsError(f"{target} already exists; it was not replaced") from None
        os.replace(partial, target)
        return
    partial.unlink()


def commit(partial: Path, target: Path, overwrite: bool = True) -> Path:
    """Make a finished temporary file (written beside ``target`` by a library that wants a path) the target:
    fsynced, renamed (or hard-linked without ``overwrite``), the folder fsynced. ``partial`` is removed on error."""
    try:
        with open(partial, "rb+") as handle:
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(partial, target)
        else:
            _no_clobber(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    fsync_folder(target.parent)
    return target


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb", overwrite: bool = True, **options: Any) -> Iterator[IO[Any]]:
    """A file handle whose content becomes ``path`` only when the ``with`` block ends without an error."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open writes whole files; mode {mode!r} is not 'wb' or 'w'")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not overwrite and target.exists():
        raise OutputExistsError(f"{target} already exists; it was not replaced")
    partial = partial_path(target)
    try:
        with open(partial, mode, **options) as handle:
            yield handle
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    commit(partial, target, overwrite)  # fsynced, renamed, the folder fsynced


def write_bytes(path: str | Path, data: bytes, overwrite: bool = True) -> Path:
    with atomic_open(path, "wb", overwrite=overwrite) as handle:
        handle.write(data)
    return Path(path)


def write_text(path: str | Path, text: str, overwrite: bool = True) -> Path:
    with atomic_open(path, "w", overwrite=overwrite, encoding="utf-8", newline="") as handle:
        handle.write(text)
    return Path(path)


def refuse_existing(paths: Iterable[Path], flag: str, what: str = "output") -> None:
    """One error listing every ``path`` that exists, naming the flag that allows replacing them."""
    existing = [str(p) for p in paths if Path(p).exists()]
    if existing:
        listed = ", ".join(existing[:10]) + (f" and {len(existing) - 10} more" if len(existing) > 10 else "")
        raise OutputExistsError(f"{len(existing)} {what} file(s) already exist: {listed}; pass {flag} to replace them")


def refuse_dangling(path: Path, key: str, expected: str) -> None:
    """A symbolic link whose target does not exist, named with where it points (the operating system would only
    say "File exists")."""
    if path.is_symlink() and not path.exists():
        raise UnwritableError(
            f"{key}={path} is a symbolic link to {os.readlink(path)}, which does not exist; expected {expected}"
        )


def writable_folder(path: str | Path, key: str) -> Path:
    """``path`` as a folder the suite can write into (created if missing), or an error naming ``key``: a file in
    the way, a dangling link, a read-only filesystem, no permission."""
    folder = Path(path).expanduser()
    refuse_dangling(folder, key, "a folder to write into (remove the link or point it at a folder)")
    if folder.exists() and not folder.is_dir():
        raise UnwritableError(f"{key}={folder} is a file; expected a folder to write into")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = partial_path(folder / "write-check")
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise UnwritableError(f"{key}={folder} cannot be written: {err.strerror or err}") from None
    return folder


def leftover_partials(folder: Path) -> list[Path]:
    """Temporary files that an interrupted write left in ``folder`` (a kill between write and rename)."""
    return sorted(folder.glob(f".*{PARTIAL_SUFFIX}"))


def remove_stale_partials(folder: Path) -> list[Path]:
    """Remove the temporary files in ``folder`` that killed processes of this host left (a checkpoint save or an
    export cut short); those of live processes, of other hosts, and of unknown owners are kept. Returns the removed."""
    removed = []
    for path in leftover_partials(Path(folder)) if Path(folder).is_dir() else []:
        match = _PARTIAL.search(path.name)
        if match and left_by_dead_process(match["owner"]):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def sha256_of(path: Path) -> str:
    """The sha256 of a file, read a megabyte at a time (the zoo's weights, denoise-data's downloads)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


#: how much of each file's start and end the training-data fingerprint reads (the whole file when it is smaller)
FINGERPRINT_SAMPLE = 1 << 16
#: the most files a fingerprint names one by one (beyond, only their count, bytes and one digest)
FINGERPRINT_NAMES = 20_000


def files_fingerprint(paths: Iterable[str | Path]) -> dict[str, Any]:
    """What a checkpoint records of the files it was trained on: their count and bytes, and a digest of each
    (its path below the files' common folder, so a dataset moved elsewhere still matches; its size; its first and
    last 64 KiB: another image, re-encoded or cut, differs there) and of all. Cheap on any dataset: two reads a file."""
    files = sorted({Path(p).expanduser().absolute() for p in paths})
    root = Path(os.path.commonpath(files)) if len(files) > 1 else (files[0].parent if files else Path())
    overall, names, total = hashlib.sha256(), {}, 0
    for path in files:
        size = path.stat().st_size
        digest = hashlib.sha256(f"{size}\0".encode())
        with path.open("rb") as handle:
            digest.update(handle.read(2 * FINGERPRINT_SAMPLE if size <= 2 * FINGERPRINT_SAMPLE else FINGERPRINT_SAMPLE))
            if size > 2 * FINGERPRINT_SAMPLE:
                handle.seek(size - FINGERPRINT_SAMPLE)
                digest.update(handle.read(FINGERPRINT_SAMPLE))
        name = path.relative_to(root).as_posix()
        overall.update(f"{name}\0{digest.hexdigest()}\n".encode())
        names[name] = digest.hexdigest()[:16]
        total += size
    listed = names if len(names) <= FINGERPRINT_NAMES else {}
    return {"files": len(files), "bytes": total, "sha256": overall.hexdigest(), "names": listed}


def fingerprint_changes(then: dict[str, Any], now: dict[str, Any]) -> str:
    """What differs between two :func:`files_fingerprint` records, in words ('' when they match)."""
    if then.get("sha256") == now.get("sha256"):
        return ""
    old, new = then.get("names") or {}, now.get("names") or {}
    differences = {
        "changed": [n for n in new if n in old and old[n] != new[n]],
        "added": [n for n in new if n not in old],
        "removed": [n for n in old if n not in new],
    }
    parts = []
    for what, names in differences.items():
        if names:
            parts.append(f"{len(names)} {what} ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})")
    counts = (
        f"{then.get('files', '?')} files of {then.get('bytes', 0):,} bytes then, {now['files']} of {now['bytes']:,} now"
    )
    return f"{'; '.join(parts) or 'the files differ'} ({counts})"
