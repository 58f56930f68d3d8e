"""bench/zoo_train.sh in its CPU smoke mode (QUICK=1): the recipes trained side by side through launcher=joblib,
each packed into a card of a fresh team zoo, and the table and goals written: the very path the GPU job runs, so
that its first run on a GPU does not fail on a typo. At most 8 files come back."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
import yaml

from denoise import zoo
from tests.helpers import SHARED_DATA, run_quick_job

pytestmark = pytest.mark.slow

CARDS = ("dncnn_gray_s25", "dncnn_gray_blind", "red30_gray_s25", "ffdnet_gray_blind", "ffdnet_color_blind")


@pytest.mark.skipif(not (SHARED_DATA / "kodak24").is_dir(), reason="the standard sets are not beside this checkout")
def test_the_zoo_job_runs_in_its_smoke_mode(tmp_path: Path) -> None:
    out = tmp_path / "out"
    # JOB_VENDOR_WHEELS=1: the launcher from bench/wheels/, as on the GPU machine, which lacks it
    done = run_quick_job("zoo_train.sh", out, tmp_path, 1200, JOB_VENDOR_WHEELS="1")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "installed ./hydra_joblib_launcher-1.2.0-py3-none-any.whl ./joblib-1.6.0-py3-none-any.whl" in done.stdout
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8 and {"index.yaml", "zoo_table.md", "logs.tar.gz"} <= set(files)
    assert sorted(f for f in files if f.endswith(".ckpt")) == sorted(f"{name}.ckpt" for name in CARDS)
    cards = yaml.safe_load((out / "index.yaml").read_text())["models"]
    assert "mwcnn_gray_s25" in cards and cards["mwcnn_gray_s25"]["file"] is None  # kept, not trained here
    for name in CARDS:
        card = cards[name]
        assert card["file"] == f"{name}.ckpt" and card["sha256"] == zoo.sha256(out / card["file"])
        assert card["scores"] and card["bm3d"] and "paper" in card  # the papers' numbers kept beside the new ones
    assert cards["dncnn_gray_s25"]["paper"] == {"set12": 30.44, "bsd68": 29.23}
    assert set(cards["dncnn_gray_blind"]["scores"]) == {f"{s}_s{k}" for s in ("set12", "bsd68") for k in (15, 25, 50)}
    colour = cards["ffdnet_color_blind"]
    assert set(colour["scores"]) == {f"{s}_s{k}" for s in ("cbsd68", "kodak24", "mcmaster") for k in (15, 25, 50)}
    assert colour["network"].startswith("FFDNet (in_channels=3, channels=96, layers=12")
    with tarfile.open(out / "logs.tar.gz") as logs:
        goals = json.load(logs.extractfile("zoo_goals.json"))["goals"]
    assert "dncnn_gray_s25 bsd68_s25 >= 29.0 dB" in goals and len(goals) == 6
    table = (out / "zoo_table.md").read_text()
    assert "| `dncnn_gray_s25` | bsd68, sigma 25 |" in table and "| `ffdnet_color_blind` | cbsd68, sigma 50 |" in table
    assert "- goal dncnn_gray_s25 bsd68_s25 >= 29.0 dB:" in table
