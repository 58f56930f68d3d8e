"""launcher=joblib: every run of a multirun at once, each in a process of its own (hydra-joblib-launcher), as the
zoo's one-GPU job trains several recipes side by side."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, TINY

pytestmark = pytest.mark.slow


def test_a_multirun_runs_its_jobs_side_by_side(tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    command = [sys.executable, str(ROOT / "train.py"), "-m", "launcher=joblib", "parallel.jobs=2", *TINY,
               "logger=none", "noise.sigma=15,25", f"paths.log_dir={tmp_path / 'logs'}"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**os.environ, "WANDB_MODE": "disabled"})  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    assert "Joblib.Parallel(n_jobs=2" in output and "is launching 2 jobs" in output
    results = sorted((tmp_path / "logs" / "train" / "multiruns").glob("*/*/results.json"))
    assert [p.parent.name for p in results] == ["0", "1"]
