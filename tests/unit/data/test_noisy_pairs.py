"""data=noisy_pairs: a user's two shots of every scene, matched by name, with the checks of data=paired (names,
sizes, alignment, every problem listed before training) and Noise2Noise learning from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from denoise.data.datamodule import NoisyPairsDataModule
from denoise.data.datamodule_base import InputCheckError
from denoise.data.io import read_image, write_image
from denoise.training.objectives import Noise2Noise, Supervised
from tests.fixtures.real import noisy_version, smooth_image
from tests.helpers import TINY, compose_cfg, read_results


def shots(root: Path, count: int = 10, size: tuple[int, int] = (48, 64), clean: bool = True, bit_depth: int = 8):
    """``root/{first,second[,clean]}/scene_NN.png``: two independent noise draws of every smooth scene."""
    rng = np.random.default_rng(3)
    for index in range(count):
        image = smooth_image(rng, *size)
        for folder in ("first", "second"):
            write_image(root / folder / f"scene_{index:02d}.png", noisy_version(rng, image, 0.08), bit_depth)
        if clean:
            write_image(root / "clean" / f"scene_{index:02d}.png", image, bit_depth)
    return root


def datamodule(tmp_path: Path, root: Path, *overrides: str, clean: bool = True) -> NoisyPairsDataModule:
    paths = [f"data.noisy_dir={root / 'first'}", f"data.second_dir={root / 'second'}"]
    paths += [f"data.clean_dir={root / 'clean'}"] if clean else []
    cfg = compose_cfg("train", [*TINY, "data=noisy_pairs", *paths, "data.patch_size=32", *overrides], tmp_path / "r")
    return instantiate(cfg.data)


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_crops_of_both_shots_are_aligned_and_held_out_scenes_are_scored_against_clean(
    tmp_path: Path, bit_depth: int
) -> None:
    root = shots(tmp_path / "data", bit_depth=bit_depth)
    dm = datamodule(tmp_path, root)
    dm.check_inputs(["train", "val", "test"])
    dm.serve(Noise2Noise.needs, "noise2noise")
    dm.setup("fit")
    dm.setup("test")
    assert len(dm.datasets["val"]) == 1 and len(dm.datasets["test"]) == 1
    sample = dm.datasets["train"][3]
    assert set(sample) == {"noisy", "noisy2", "clean", "name"}
    # the same window of the same scene: both shots sit within the noise of the clean crop, and differ
    for key in ("noisy", "noisy2"):
        assert (sample[key] - sample["clean"]).std() == pytest.approx(0.08, abs=0.02)
    assert not torch.equal(sample["noisy"], sample["noisy2"])
    test = dm.datasets["test"][0]
    assert set(test) == {"noisy", "clean", "name"}
    first = read_image(root / "first" / test["name"], 3)
    assert np.array_equal(test["noisy"].numpy().transpose(1, 2, 0), first)


def test_without_clean_images_validation_has_no_ground_truth_and_supervised_is_refused(tmp_path: Path) -> None:
    root = shots(tmp_path / "data", clean=False)
    dm = datamodule(tmp_path, root, clean=False)
    assert not dm.has_clean
    with pytest.raises(ValueError, match=r"supervised needs clean target images; data=noisy_pairs has two noisy"):
        dm.serve(Supervised.needs, "supervised")
    dm.serve(Noise2Noise.needs, "noise2noise")
    dm.setup("fit")
    assert set(dm.datasets["train"][0]) == {"noisy", "noisy2", "name"}
    assert set(dm.datasets["val"][0]) == {"noisy", "name"}


def test_every_problem_is_listed_before_training(tmp_path: Path) -> None:
    """A shot without a partner is named (all of them at once); then sizes that differ and a second shot of
    another place, each named with the scene."""
    root = shots(tmp_path / "data")
    (root / "second" / "scene_01.png").unlink()
    (root / "clean" / "scene_02.png").unlink()
    with pytest.raises(InputCheckError) as err:
        datamodule(tmp_path, root).check_inputs(["train"])
    message = str(err.value)
    assert "2 scene(s)" in message and "lack a partner" in message
    assert "scene_01.png (no scene_01.* in data.second_dir)" in message
    assert "scene_02.png (no scene_02.* in data.clean_dir)" in message

    root = shots(tmp_path / "data2")
    rng = np.random.default_rng(9)
    write_image(root / "second" / "scene_03.png", noisy_version(rng, smooth_image(rng, 40, 64), 0.08))  # smaller
    moved = read_image(root / "second" / "scene_04.png", 3)
    write_image(root / "second" / "scene_04.png", np.roll(moved, 8, axis=1))  # the tripod moved 8 pixels
    write_image(root / "second" / "scene_05.png", noisy_version(rng, smooth_image(rng, 48, 64), 0.08))  # elsewhere
    with pytest.raises(InputCheckError) as err:
        datamodule(tmp_path, root).check_inputs(["train"])
    message = str(err.value)
    assert "scene scene_03: the images differ in size" in message and "is 40x64" in message
    assert "scene scene_04:" in message and "do not show the same scene in the same place" in message
    assert "scene scene_05:" in message
    assert "scene scene_06" not in message and "scene scene_07" not in message  # aligned shots pass


def test_noise2noise_on_noisy_pairs_learns_what_supervised_learns(tmp_path: Path) -> None:
    """Two noise draws of scikit-image's photos (sigma 25): Noise2Noise on data=noisy_pairs raises the test PSNR
    against the clean images by a real margin (measured here: +5.7 dB after 240 steps)."""
    from skimage import data as photos

    from denoise.tasks import train

    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    names = ("astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "moon", "page", "text", "cat")
    for name in names:
        image = getattr(photos, name)()
        image = (image[..., None].repeat(3, axis=-1) if image.ndim == 2 else image)[:128, :128] / 255
        write_image(root / "clean" / f"{name}.png", image.astype(np.float32))
        for folder in ("first", "second"):
            write_image(root / folder / f"{name}.png", np.clip(image + rng.normal(0, 25 / 255, image.shape), 0, 1))
    run = tmp_path / "run"
    overrides = [
        "data=noisy_pairs", f"data.noisy_dir={root / 'first'}", f"data.second_dir={root / 'second'}",
        f"data.clean_dir={root / 'clean'}", "data.patch_size=48", "data.samples_per_epoch=960",
        "trainer.max_epochs=2", "trainer.accelerator=cpu", "logger=none", "objective=noise2noise",
        "~callbacks.rich_progress_bar", "~callbacks.model_summary",
    ]  # fmt: skip
    train(compose_cfg("train", overrides, run))
    results = read_results(run)
    assert results["test/psnr"] - results["test/psnr_noisy"] > 4.0, results
    assert results["objective"].startswith("noise2noise")
