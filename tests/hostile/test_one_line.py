"""Hostile inputs, principle 6: one line, never a traceback, for every error a user can cause: a full disk (the
folder and its free space named), every key of the typed config check, a malformed zoo index, absurd limits, a
dangling output link, and a battery of bad inputs to every command."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from denoise.checkpoint import AtomicCheckpointIO
from denoise.cli import export, predict
from denoise.cli.models import show_zoo
from denoise.data.files import leftover_partials
from denoise.data.io import write_image
from tests.fixtures.small import lightning_checkpoint, tiny_images
from tests.helpers import ROOT, TINY

NET = {"_target_": "denoise.models.rednet.REDNet", "depth": 10, "channels": 8, "in_channels": 3}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real filesystem of 96 KiB (a tmpfs, mounted where this runs as root), to fill for real."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(folder)]
    mounted = os.geteuid() == 0 and subprocess.run(mount, capture_output=True).returncode == 0
    if not mounted:
        pytest.skip("a tmpfs cannot be mounted here (needs root); tests/unit/test_writes.py fills a disk by hand")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_disk_during_a_checkpoint_save_names_the_folder_and_its_free_space(small_disk: Path) -> None:
    """The report's case: a full disk mid-save was `RuntimeError: [enforce fail at inline_container.cc:672]
    unexpected pos`. Filled for real: the error is an OSError of errno ENOSPC, the earlier checkpoint stays whole."""
    last = small_disk / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"w": torch.ones(100)}, last)
    with pytest.raises(OSError) as raised:
        AtomicCheckpointIO().save_checkpoint({"w": torch.zeros(200_000)}, last)
    assert raised.value.errno == errno.ENOSPC
    assert str(raised.value).startswith(f"cannot save the checkpoint {last}: the disk is full ({small_disk}: ")
    assert "MiB free); the previous checkpoint there is kept whole" in str(raised.value)
    assert torch.equal(torch.load(last, weights_only=True)["w"], torch.ones(100))
    assert leftover_partials(small_disk) == []


@pytest.mark.slow
def test_a_training_whose_disk_fills_says_so_in_one_line(small_disk: Path) -> None:
    env = {**os.environ, "WANDB_MODE": "offline"}
    run = small_disk / "run"
    command = [sys.executable, str(ROOT / "train.py"), *TINY, "logger=none", "model.net.channels=64"]
    done = subprocess.run([*command, f"hydra.run.dir={run}"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr[-3000:]
    assert f"error: cannot save the checkpoint {run / 'checkpoints'}" in done.stderr
    assert "the disk is full" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("index", "says"),
    [
        ("models: [1, 2", "is not valid YAML"),
        ("models: 5\n", "expected a 'models:' mapping of name -> card"),
        ("models:\n  ../evil: {}\n", "the card name '../evil' is not allowed"),
        ("models:\n  a: 5\n", "the card 'a' is a int; expected a mapping of fields"),
    ],
)
def test_a_malformed_zoo_index_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], index: str, says: str
) -> None:
    (tmp_path / "index.yaml").write_text(index)
    monkeypatch.setenv("DENOISE_ZOO", str(tmp_path / "index.yaml"))
    assert show_zoo(as_json=False) == 2
    err = capsys.readouterr().err
    assert err.startswith("denoise-models: error: ") and says in err and err.count("\n") == 1


def test_a_card_with_odd_fields_is_shown_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "index.yaml").write_text("models:\n  a: {scores: 5, paper: [30.1], network: 7}\n")
    monkeypatch.setenv("DENOISE_ZOO", str(tmp_path / "index.yaml"))
    assert show_zoo(as_json=False) == 0 and show_zoo(as_json=True) == 0
    assert "30.1" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["0", "-5", "many"])
def test_an_absurd_pixel_limit_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str) -> None:
    """The report's case: --max-pixels 0 and -5 were accepted, with a message about "-5e-06 megapixels"."""
    with pytest.raises(SystemExit) as exited:
        predict.main(["x.ckpt", "in.png", "-o", str(tmp_path), "--max-pixels", value])
    assert exited.value.code == 2
    expected = (
        f"{value!r} is not a whole number" if value == "many" else f"{value} is not a positive number (expected >= 1)"
    )
    assert f"argument --max-pixels: {expected}" in capsys.readouterr().err


def test_a_dangling_output_link_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The report's case: -o a dangling symlink said "File exists"."""
    ckpt = lightning_checkpoint(tmp_path / "net.ckpt", NET)
    images = tiny_images(tmp_path / "in", count=1)
    (tmp_path / "out").symlink_to(tmp_path / "gone")
    assert predict.main([str(ckpt), str(images), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"-o={tmp_path / 'out'} is a symbolic link to {tmp_path / 'gone'}, which does not exist" in err
    (tmp_path / "model.onnx").symlink_to(tmp_path / "nowhere.onnx")
    assert export.main([str(ckpt), "-o", str(tmp_path / "model.onnx")]) == 2
    assert f"-o={tmp_path / 'model.onnx'} is a symbolic link to {tmp_path / 'nowhere.onnx'}" in capsys.readouterr().err


def battery(tmp_path: Path) -> list[tuple[list[str], dict[str, str], str]]:
    """(command, environment, what its one line says) for bad inputs to every command."""
    ckpt = lightning_checkpoint(tmp_path / "net.ckpt", NET)
    images = tiny_images(tmp_path / "in", count=1)
    (tmp_path / "random.ckpt").write_bytes(np.random.default_rng(0).bytes(5000))
    (tmp_path / "in2").mkdir()
    (tmp_path / "in2" / "fake.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    write_image(tmp_path / "in3" / "ok.png", np.zeros((16, 16, 3), np.float32))
    (tmp_path / "zoo.yaml").write_text("models: [1, 2")
    (tmp_path / "catalog.yaml").write_text("entries: {x: {files: {'../x': [1, 'a']}}}")
    out = str(tmp_path / "out")
    return [
        (["denoise-predict", str(tmp_path / "none.ckpt"), str(images), "-o", out], {}, "no such checkpoint file"),
        (["denoise-predict", str(tmp_path / "random.ckpt"), str(images), "-o", out], {}, "not a readable PyTorch"),
        (["denoise-predict", str(ckpt), str(tmp_path / "in2"), "-o", out], {}, "cannot read the header of image"),
        (["denoise-predict", str(ckpt), str(images), "-o", out, "--tile", "-1"], {}, "expected numbers >= 0"),
        (["denoise-predict", str(ckpt), str(images), "-o", out], {"DENOISE_MAX_PIXELS": "abc"}, "DENOISE_MAX_PIXELS"),
        (["denoise-predict", str(ckpt), str(images), "-o", out], {"DENOISE_MAX_MODULES": "x"}, "DENOISE_MAX_MODULES"),
        (["denoise-export", str(tmp_path / "random.ckpt"), "-o", str(tmp_path / "m.onnx")], {}, "not a readable"),
        (["denoise-models", "--zoo"], {"DENOISE_ZOO": str(tmp_path / "zoo.yaml")}, "is not valid YAML"),
        (["denoise-data", "get", "nope"], {}, "unknown ['nope']"),
        (["denoise-data", "list"], {"DENOISE_DATA_CATALOG": str(tmp_path / "catalog.yaml")}, "would land outside"),
        (["denoise-zoo", "import", "--from", "dncnn", str(tmp_path / "none.pt")], {}, "none.pt"),
        (["denoise-evaluate", "ckpt_path=/no/such.ckpt", f"hydra.run.dir={out}"], {}, "no such checkpoint file"),
        (["denoise-train", *TINY, "data.patch_size=abc", f"hydra.run.dir={out}"], {}, "data.patch_size='abc'"),
        (["denoise-eda", "data=sidd", f"hydra.run.dir={out}"], {}, "data.root"),
    ]


@pytest.mark.slow
def test_every_command_answers_bad_input_in_one_line(tmp_path: Path) -> None:
    """Each bad input, run as a user runs it (a console script, a fresh process): exit status 2, the reason on
    stderr, no traceback, and nothing written where it pointed."""
    from concurrent.futures import ThreadPoolExecutor

    def answer(case: tuple[list[str], dict[str, str], str]) -> str:
        command, env, says = case
        environment = {**os.environ, "WANDB_MODE": "offline", **env}
        done = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300)
        if done.returncode != 2 or says not in done.stderr or "Traceback" in done.stderr:
            return f"{' '.join(command[:3])} {env}: rc {done.returncode}\n{done.stderr[-1500:]}"
        return ""

    with ThreadPoolExecutor(max_workers=2) as pool:  # two at a time: each is mostly PyTorch's import
        failures = [failure for failure in pool.map(answer, battery(tmp_path)) if failure]
    assert not failures, "\n\n".join(failures)
    assert not (tmp_path / "out").exists()
