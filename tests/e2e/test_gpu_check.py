"""bench/gpu_check.sh in its CPU smoke mode (QUICK=1): the very script a GPU run executes, every step through the
same code paths with tiny settings, so that its first run on a GPU does not fail on a typo. It must finish, write
at most 8 files (what a GPU machine returns), and a summary.json whose figures carry their goals."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from tests.helpers import SHARED_DATA, run_quick_job

pytestmark = pytest.mark.slow


def test_the_gpu_check_runs_in_its_smoke_mode(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = run_quick_job("gpu_check.sh", out, tmp_path, 900, WANDB_MODE="disabled")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    files = sorted(p.name for p in out.iterdir())
    assert files == ["device.txt", "logs.tar.gz", "summary.json", "summary.txt"] and len(files) <= 8
    summary = json.loads((out / "summary.json").read_text())
    assert {s["step"]: s["status"] for s in summary["steps"]} == {
        "parity": "ok" if (SHARED_DATA / "set12").is_dir() else "skipped",
        "overhead": "ok", "compiled": "ok", "tiling": "ok",
    }  # fmt: skip
    names = [f["figure"] for f in summary["figures"]]
    assert any(n.startswith("train.py over plain, host") for n in names)
    assert any(n.startswith("train.py over plain, host compiled") for n in names)
    assert any(n.startswith("rednet_small tiles x2: speed / whole") for n in names)
    if (SHARED_DATA / "set12").is_dir():  # the CPU's Set12 scores equal the stored reference
        parity = next(f for f in summary["figures"] if f["figure"].startswith("parity set12 cpu fp32"))
        assert parity["met"] is True and parity["value"] <= 1e-4
    with tarfile.open(out / "logs.tar.gz") as logs:
        members = {Path(m).name for m in logs.getnames()}
    assert {"overhead.json", "compiled.json", "tiling.json", "overhead.log", "steps.txt"} <= members
