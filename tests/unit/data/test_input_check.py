"""Every split is checked before the first training step, and every problem is listed at once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from denoise.data.datamodule import InputCheckError
from denoise.data.io import write_image
from denoise.tasks import train
from tests.fixtures.small import tiny_images
from tests.helpers import TINY, TINY_REAL, compose_cfg


def test_a_bad_test_folder_fails_before_training_with_every_problem(tmp_path: Path) -> None:
    """The issue's case (data.test_dirs=[/nope] trained the whole run, then failed) and more at once: a corrupt
    validation file and a training image smaller than the crops."""
    train_dir = tiny_images(tmp_path / "train", count=2, size=(40, 56))
    write_image(train_dir / "tiny.png", np.zeros((20, 20, 3), np.float32))
    val_dir = tiny_images(tmp_path / "val", count=1)
    (val_dir / "broken.png").write_bytes(b"\x89PNG not really")
    run = tmp_path / "run"
    overrides = [*TINY, "logger=none", f"data.train_dirs=[{train_dir}]", f"data.val_dirs=[{val_dir}]"]
    overrides += ["data.test_dirs=[/nope]"]
    with pytest.raises(InputCheckError, match=r"3 problem\(s\) in the data, found before training") as caught:
        train(compose_cfg("train", overrides, run))
    message = str(caught.value)
    assert f"[train] {train_dir / 'tiny.png'} is 20x20, smaller than data.patch_size=32" in message
    assert f"[val] cannot read the header of image file {val_dir / 'broken.png'}" in message
    assert "[test] data.test_dirs[0]: folder /nope does not exist" in message
    assert not (run / "checkpoints").exists()  # nothing trained


def test_paired_sizes_are_checked_for_every_split_before_training(tmp_path: Path) -> None:
    """data=paired: pairs of different sizes in the training and the test split both fail up front."""
    rng = np.random.default_rng(0)
    for i in range(10):
        clean = rng.random((48, 48, 3)).astype(np.float32)
        write_image(tmp_path / "clean" / f"p{i}.png", clean)
        size = (48, 40) if i in (0, 5) else (48, 48)  # p0 lands in test, p5 in train (every 10th: 10% each)
        write_image(tmp_path / "noisy" / f"p{i}.png", rng.random((*size, 3)).astype(np.float32))
    overrides = ["data=paired", f"data.noisy_dir={tmp_path / 'noisy'}", f"data.clean_dir={tmp_path / 'clean'}"]
    overrides += [o for o in TINY_REAL if not o.startswith("data.store")]
    with pytest.raises(InputCheckError) as caught:
        train(compose_cfg("train", overrides, tmp_path / "run"))
    message = str(caught.value)
    assert message.count("the images differ in size") == 2, message
    assert "[train] pair p5.png: the images differ in size" in message and "[test] pair p0.png: the images" in message
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_network_channels_and_store_size_errors_name_their_keys(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"model\.net\.in_channels=1 but the data gives 3-channel images"):
        train(compose_cfg("train", [*TINY, "logger=none", "model.net.in_channels=1"], tmp_path / "a"))
    rng = np.random.default_rng(1)
    for i in range(4):
        image = rng.random((40, 48, 3)).astype(np.float32)
        write_image(tmp_path / "clean" / f"p{i}.png", image)
        write_image(tmp_path / "noisy" / f"p{i}.png", image)
    overrides = ["data=paired", f"data.noisy_dir={tmp_path / 'noisy'}", f"data.clean_dir={tmp_path / 'clean'}"]
    overrides += [o for o in TINY_REAL if not o.startswith("data.store")]
    overrides += ["data.store.enabled=true", "data.store.size=64", "data.datasets.paired.val_fraction=0.25"]
    with pytest.raises(ValueError, match=r"data\.store\.size=64 is larger than .* set data\.store\.size to at most 40"):
        train(compose_cfg("train", overrides, tmp_path / "b"))
