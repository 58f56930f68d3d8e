"""What made a result: the suite's version and, in a git checkout, its commit (and whether the tree had
uncommitted changes), recorded in every results.json and checkpoint so that a number can be traced to its code."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from denoise import __version__

#: the checkout the package runs from, when it is one (an editable install or a clone); a wheel has none
CHECKOUT = Path(__file__).resolve().parents[1]


@functools.cache
def provenance() -> dict[str, str | bool | None]:
    """``{"denoise_version", "git_commit", "git_dirty"}``; the git fields are None outside a git checkout (a
    wheel) or without git."""
    commit, dirty = None, None
    if (CHECKOUT / ".git").exists():
        try:
            commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=CHECKOUT, capture_output=True, text=True,
                                    timeout=10, check=True).stdout.strip() or None  # fmt: skip
            status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=CHECKOUT,
                                    capture_output=True, text=True, timeout=10, check=True).stdout  # fmt: skip
            dirty = bool(status.strip())
        except (OSError, subprocess.SubprocessError):
            commit, dirty = None, None
    return {"denoise_version": __version__, "git_commit": commit, "git_dirty": dirty}


def version_line() -> str:
    """``denoise 0.1.0 (git 1a2b3c4d, uncommitted changes)`` for ``--version``."""
    info = provenance()
    if info["git_commit"] is None:
        return f"denoise {__version__}"
    dirty = ", uncommitted changes" if info["git_dirty"] else ""
    return f"denoise {__version__} (git {str(info['git_commit'])[:12]}{dirty})"
