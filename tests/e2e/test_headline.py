"""bench/headline.py: every filter and every model that claims a sigma on the same noisy images, one table with
the papers' rows, the commands of every column, and one grid of every method on the same crop."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, SHARED_DATA

REFERENCE = SHARED_DATA / "reference" / "dncnn_sigma25_gray.pt"


@pytest.mark.skipif(not REFERENCE.is_file(), reason="the DnCNN authors' weights are not beside this checkout")
def test_the_headline_puts_a_sigma_25_model_beside_the_filters_at_every_sigma(tmp_path: Path) -> None:
    data = tmp_path / "data" / "set12"
    data.mkdir(parents=True)
    for name in ("01.png", "02.png"):
        shutil.copy(SHARED_DATA / "set12" / name, data / name)
    env = {**os.environ, "DENOISE_ZOO": str(tmp_path / "zoo" / "index.yaml")}
    subprocess.run([sys.executable, "-m", "denoise.cli.zoo", "import", "--from", "dncnn", str(REFERENCE),
                    "--name", "dncnn_authors"], env=env, check=True, capture_output=True, cwd=ROOT)  # fmt: skip
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "headline.py"), "--data-dir", str(tmp_path / "data"),
         "--sets", "set12", "--sigmas", "15", "25", "--filters", "wiener", "gaussian",
         "--models", "zoo:dncnn_authors@25", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    scores = json.loads((out / "headline.json").read_text())["scores"]
    model = "DnCNN (zoo:dncnn_authors)"
    assert set(scores[model]) == {"set12_s25"}  # a sigma-25 model only where it claims
    assert set(scores["Adaptive Wiener"]) == set(scores["Gaussian"]) == {"set12_s15", "set12_s25"}
    assert scores[model]["set12_s25"]["psnr"] > scores["Adaptive Wiener"]["set12_s25"]["psnr"] + 2  # deep wins
    table = (out / "headline.md").read_text()
    assert "| method | set12, sigma 15 | set12, sigma 25 |" in table
    assert "| *dncnn_gray_s25 (paper)* | - | 30.44 |" in table  # the shipped cards' published numbers
    assert "noise.sigma=25 filters=[wiener,gaussian] ckpt_paths=[zoo:dncnn_authors] grid_images=1" in table
    assert (out / "headline_grid.png").stat().st_size > 10_000
