"""denoise-zoo add RUN_DIR: a finished run becomes a card of a team's zoo (DENOISE_ZOO): the network's weights in
fp16 where the scores hold within 0.01 dB, their sha256, the recipe and overrides, minutes and steps, and the scores
on the gray benchmarks at the run's sigma; the card then works as zoo:<name>."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from denoise import zoo
from denoise.checkpoint import load_network
from denoise.cli import zoo as zoo_cli
from denoise.data.io import write_image
from tests.helpers import TINY, run_cli

pytestmark = pytest.mark.slow


def gray_set(folder: Path, count: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    for index in range(count):
        low = rng.random((6, 6, 1)).astype(np.float32)
        write_image(folder / f"{index:02d}.png", np.kron(low, np.ones((8, 8, 1), np.float32)))
    return folder


def test_a_finished_run_becomes_a_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    data = tmp_path / "data"
    for name, count in (("train400", 6), ("set12", 2), ("bsd68", 3)):
        gray_set(data / name, count, seed=len(name))
    run = tmp_path / "run"
    overrides = [o for o in TINY if not o.startswith("model.net")] + [
        "model=dncnn", "model.net.depth=3", "model.net.channels=8", "data.grayscale=true", "logger=none",
        f"data.train_dirs=[{data / 'train400'}]", f"data.val_dirs=[{data / 'set12'}]",
        f"data.test_dirs=[{data / 'bsd68'}]",
    ]  # fmt: skip
    trained = run_cli("train.py", *overrides, run_dir=run)
    assert trained.returncode == 0, trained.stderr[-2000:]

    index = tmp_path / "team" / "index.yaml"
    index.parent.mkdir()
    index.write_text("# our team's zoo\nmodels: {}\n")
    monkeypatch.setenv("DENOISE_ZOO", str(index))
    assert zoo_cli.main(["add", str(run), "--name", "team_dncnn", "--data-dir", str(data)]) == 0
    card = yaml.safe_load(index.read_text())["models"]["team_dncnn"]
    assert index.read_text().startswith("# our team's zoo\n")
    assert set(card["scores"]) == {"set12_s25", "bsd68_s25"} and card["steps"] == 2
    assert all(np.isfinite(s["psnr"]) and 0 < s["ssim"] <= 1 for s in card["scores"].values())
    assert card["network"].startswith("DnCNN (") and card["recipe"] == "" and "model=dncnn" in card["overrides"]
    weights = index.parent / card["file"]
    assert card["sha256"] == zoo.sha256(weights) and card["bytes"] == weights.stat().st_size
    assert card["dtype"] == "fp16" and card["fp16_worst_psnr_change_db"] <= 0.01
    net, spec = load_network("zoo:team_dncnn")  # the card works wherever a checkpoint path does
    assert spec["depth"] == 3 and next(net.parameters()).dtype.is_floating_point

    shutil.rmtree(data / "set12")
    shutil.rmtree(data / "bsd68")
    assert zoo_cli.main(["add", str(run), "--data-dir", str(data)]) == 2
    assert "none of ['set12', 'bsd68'] is under" in capsys.readouterr().err
    assert zoo_cli.main(["add", str(tmp_path / "nowhere")]) == 2
    assert "has no results.json" in capsys.readouterr().err
