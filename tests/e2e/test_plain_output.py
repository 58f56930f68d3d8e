"""Without a terminal (nohup, SLURM, a pipe; here a pipe), every command's output is plain: progress as lines with
what, how far, how fast and how long still; tables at full width, never wrapped; each log line once; no terminal
codes, box drawings or adverts."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.fixtures.small import lightning_checkpoint, tiny_images
from tests.helpers import TINY, run_cli

DRAWN = ("\x1b[", "┏", "━", "│", "└")  # terminal codes, a rich table's or bar's drawing


def plain(text: str) -> bool:
    return not any(mark in text for mark in DRAWN)


def test_train_in_a_pipe_says_each_line_once_and_plainly(tmp_path: Path) -> None:
    run = tmp_path / "run"
    # the default bar and summary, which must stay silent or plain in a pipe
    with_bar = [override for override in TINY if not override.startswith("~callbacks.")]
    result = run_cli("train.py", *with_bar, "logger=none", run_dir=run)
    assert result.returncode == 0, result.stderr[-2000:]
    said = result.stdout + result.stderr
    assert plain(said), said[-3000:]
    assert said.count("GPU available") == 1 and "litlogger" not in said and "Total FLOPs" not in said
    assert re.search(r"^\| REDNet +\| +[\d.]+ \| [\d.]+ \|", result.stdout, re.M), result.stdout  # the results, plain
    assert re.search(r"^parameters: [\d.]+ K trainable, 0 frozen, [\d.]+ K in all", result.stdout, re.M)
    assert "epoch 1/1 step" in (run / "train.log").read_text() and "GPU available" in (run / "train.log").read_text()


def test_evaluate_reports_progress_in_lines_and_in_its_log(tmp_path: Path) -> None:
    """The report's case: a Set12 comparison with every filter printed nothing for 16 minutes under nohup."""
    run = tmp_path / "run"
    env = {"DENOISE_PROGRESS_EVERY": "0"}
    result = run_cli("evaluate.py", "filters=[mean,median]", run_dir=run, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    pattern = r"evaluate: (\d+)/4 runs \((Mean|Median) on \w+\.png\), [\d.]+ runs/s, elapsed [\d:]+, ETA"
    lines = re.findall(pattern, result.stdout)
    assert [int(done) for done, _ in lines] == [1, 2, 3, 4], result.stdout
    assert "evaluate: 4/4 runs" in (run / "evaluate.log").read_text() and plain(result.stdout)
    assert "the noisy input and 2 methods on 2 test images" in (run / "results.md").read_text()


def test_predict_and_the_zoo_table_in_a_pipe(tmp_path: Path) -> None:
    net = {"_target_": "denoise.models.rednet.REDNet", "depth": 10, "channels": 8, "in_channels": 3}
    ckpt = lightning_checkpoint(tmp_path / "net.ckpt", net, identity=True)
    images = tiny_images(tmp_path / "in", count=2)
    env = {**os.environ, "DENOISE_PROGRESS_EVERY": "0", "COLUMNS": "80"}
    command = ["denoise-predict", str(ckpt), str(images), "-o", str(tmp_path / "out")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert re.search(r"^denoise-predict: 2/2 images \(img1\.png\), [\d.]+ images/s, elapsed", done.stdout, re.M)
    zoo = subprocess.run(["denoise-models", "--zoo"], env=env, capture_output=True, text=True, timeout=300)
    rows = [line for line in zoo.stdout.splitlines() if line.startswith("| dncnn_gray_blind ")]
    assert len(rows) == 1 and "DnCNN-B, 20 layers, 64 channels, gray, sigma 0-55" in rows[0] and plain(zoo.stdout)
