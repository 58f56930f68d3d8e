"""One process per run directory: a lock that a killed run leaves free.

A training process holds an exclusive ``flock`` on ``<run>/.lock`` while it runs, with its pid, host and start
time written inside for the error message. The operating system drops the lock when the process ends, however
it ends (``kill -9``, a node crash, a SLURM pre-emption), so a stale file never blocks a resume; a run that is
still alive makes ``ckpt_path=last`` (or a checkpoint path inside it) fail with an error naming it, instead of
two processes writing one directory. Without ``fcntl`` (Windows) runs are not locked.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import IO, Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"


class RunDirectoryBusyError(OSError):
    """Another live process is training in this run directory (an OSError, as the lock's own EWOULDBLOCK is: the
    commands report it in one line, like every error a user can cause)."""


def _describe(info: dict[str, Any], run: Path) -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["started"])) if "started" in info else "?"
    who = f"pid {info.get('pid', '?')} on {info.get('host', '?')}, since {started}"
    return f"{run} is in use by a running training ({who})"


def holder(run: Path) -> dict[str, Any] | None:
    """Who holds ``run``'s lock (pid, host, started), or None when no live process does."""
    path = Path(run) / LOCK_NAME
    if fcntl is None or not path.is_file():
        return None
    with path.open("r") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            try:
                return json.loads(handle.read() or "{}")
            except json.JSONDecodeError:
                return {}
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


class RunLock:
    """The exclusive lock of one run directory, held from :meth:`acquire` to :meth:`release`."""

    def __init__(self, run: Path) -> None:
        self.run = Path(run)
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        if fcntl is None:
            return
        self.run.mkdir(parents=True, exist_ok=True)
        handle = (self.run / LOCK_NAME).open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            try:
                info = json.loads(handle.read() or "{}")
            except json.JSONDecodeError:
                info = {}
            handle.close()
            raise RunDirectoryBusyError(_describe(info, self.run)) from None
        handle.seek(0)
        handle.truncate()
        json.dump({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}, handle)
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is None:
            return
        try:
            (self.run / LOCK_NAME).unlink(missing_ok=True)
        finally:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def refuse_if_busy(run: Path, what: str) -> None:
    """Raise RunDirectoryBusyError naming ``run`` when a live process holds it (``what``: the config key's words)."""
    info = holder(run)
    if info is not None:
        raise RunDirectoryBusyError(
            f"{what}: {_describe(info, run)}. Wait for it to end or stop it (its checkpoints stay), or resume "
            "another run with ckpt_path=<run>/checkpoints/last.ckpt"
        )
