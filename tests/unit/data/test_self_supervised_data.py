"""Data for the self-supervised objectives: second noisy shots from SIDD, NIND and RENOIR, a second synthetic
noise draw, folders of noisy images alone, and the errors when the data cannot give what an objective needs."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from denoise.data.datamodule import NoisyFolderDataModule
from denoise.data.io import ImageReadError, read_image, write_image
from denoise.data.pairs import scene_mates, unique_pairs
from denoise.training.objectives import Neighbor2Neighbor, Noise2Noise, Supervised
from tests.fixtures.real import make_nind, make_renoir, make_sidd, noisy_version, smooth_image
from tests.helpers import SHARED_DATA, TINY, TINY_REAL, compose_cfg


def datamodule(tmp_path: Path, *overrides: str):
    """The data config of a tiny run (the real datasets' settings where the overrides pick one)."""
    real = not any(o.startswith("data=noisy_folder") for o in overrides)
    cfg = compose_cfg("train", [*(TINY_REAL if real else [*TINY, "data.num_workers=0"]), *overrides], tmp_path / "run")
    return instantiate(cfg.data)


def as_float(patch: torch.Tensor) -> np.ndarray:
    """A sample's ``C x p x p`` patch as ``p x p x C`` float in [0, 1] (the patch store keeps 8-bit data as uint8)."""
    array = patch.numpy().transpose(1, 2, 0)
    return array.astype(np.float32) / 255 if array.dtype == np.uint8 else array


def find_crop(image: np.ndarray, patch: np.ndarray) -> tuple[int, int]:
    """Where ``patch`` (p x p x C) lies in ``image`` (H x W x C)."""
    size = patch.shape[0]
    for top in range(image.shape[0] - size + 1):
        for left in range(image.shape[1] - size + 1):
            if np.allclose(image[top : top + size, left : left + size], patch, atol=1e-6):
                return top, left
    raise AssertionError("the crop is not in the image")


def sample_pair_name(train, sample: dict) -> str:
    """The training pair a sample was cut from: its name, or the patch store entry holding its sub-image."""
    if not hasattr(train, "stores"):
        return sample["name"]
    folder, item = sample["name"].rsplit("/", 1)
    store = next(store for store in train.stores if store.folder.name == folder)
    entry = next(e for e in store.index["pairs"] if e["first"] <= int(item) < e["first"] + e["count"])
    return entry["name"]


@pytest.mark.parametrize("store", [True, False], ids=["patch-store", "whole-files"])
@pytest.mark.parametrize("dataset", ["sidd", "nind", "renoir"])
def test_second_shots_are_other_noisy_files_of_the_same_scene(tmp_path: Path, dataset: str, store: bool) -> None:
    make = {"sidd": make_sidd, "nind": make_nind, "renoir": make_renoir}[dataset]
    root = make(tmp_path / dataset)
    options = [f"data={dataset}", f"data.root={root}", "data.augment=false", f"data.store.enabled={store}"]
    dm = datamodule(tmp_path, *options)
    dm.serve(Noise2Noise.needs, "noise2noise")
    pairs = unique_pairs(next(iter(dm.layouts.values())).splits())
    mates = scene_mates(pairs)
    for pair in pairs:
        assert mates[pair.noisy], f"{pair.noisy} has no second shot"
        for other in mates[pair.noisy]:
            assert other != pair.noisy and other not in pair.clean
            assert other.parent == pair.noisy.parent  # the scene's folder (a SIDD scene, NIND scene, RENOIR batch)
    if dataset == "sidd":
        assert all({p.noisy.name[-7:-4] for p in pairs if p.group == pair.group} == {"010", "011"} for pair in pairs)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # RENOIR's batch whose sizes differ by 2 px
        dm.prepare_data()
        dm.setup("fit")
        samples = [dm.datasets["train"][index] for index in range(6)]
    train = dm.datasets["train"]
    for sample in samples:
        pair = next(p for p in pairs if p.name == sample_pair_name(train, sample))
        noisy, second = as_float(sample["noisy"]), as_float(sample["noisy2"])
        assert second.shape == noisy.shape and not np.array_equal(second, noisy)
        top, left = find_crop(read_image(pair.noisy, 3), noisy)
        size = noisy.shape[0]
        windows = [read_image(mate, 3)[top : top + size, left : left + size] for mate in mates[pair.noisy]]
        # noisy2 is the same window of one of the scene's other noisy files
        assert any(np.allclose(window, second, atol=1e-6) for window in windows)


def test_one_shot_per_scene_is_refused_for_noise2noise(tmp_path: Path) -> None:
    root = make_sidd(tmp_path / "small", release="small")
    dm = datamodule(tmp_path, "data=sidd", f"data.root={root}")
    with pytest.raises(ValueError, match=r"noise2noise needs two independent noisy shots of every scene.*SIDD Medium"):
        dm.serve(Noise2Noise.needs, "noise2noise")
    dm.serve(Neighbor2Neighbor.needs, "neighbor2neighbor")  # one shot is enough there


def test_synthetic_second_draw_is_independent_noise_on_the_same_crop(cfg_train) -> None:
    dm = instantiate(cfg_train.data)
    dm.serve(Noise2Noise.needs, "noise2noise")
    dm.setup("fit")
    sample = dm.datasets["train"][0]
    first, second = sample["noisy"] - sample["clean"], sample["noisy2"] - sample["clean"]
    assert not torch.equal(first, second)
    sigma = float(cfg_train.noise.sigma) / 255
    assert [float(first.std()), float(second.std())] == pytest.approx([sigma, sigma], rel=0.15)
    assert abs(float(np.corrcoef(first.flatten(), second.flatten())[0, 1])) < 0.1
    dm = instantiate(cfg_train.data)
    dm.serve(Supervised.needs, "supervised")
    dm.setup("fit")
    assert "noisy2" not in dm.datasets["train"][0]  # drawn only when an objective asks for it


def noisy_folder(folder: Path, count: int = 10, bit_depth: int = 8, sigma: float = 0.08) -> Path:
    rng = np.random.default_rng(5)
    for index in range(count):
        size = (40 + 4 * index, 56 - 2 * index)  # any size
        write_image(folder / f"shot_{index:02d}.png", noisy_version(rng, smooth_image(rng, *size), sigma), bit_depth)
    return folder


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_noisy_folder_serves_noisy_crops_and_held_out_images(tmp_path: Path, bit_depth: int) -> None:
    folder = noisy_folder(tmp_path / "noisy", bit_depth=bit_depth)
    dm = datamodule(tmp_path, "data=noisy_folder", f"data.noisy_dir={folder}", "objective=noise2void")
    assert isinstance(dm, NoisyFolderDataModule) and not dm.has_clean
    dm.check_inputs(["train", "val", "test"])
    dm.serve(Neighbor2Neighbor.needs, "neighbor2neighbor")
    dm.setup("fit")
    dm.setup("test")
    assert len(dm.datasets["train"]) == 8 and len(dm.datasets["val"]) == 1 and len(dm.datasets["test"]) == 1
    crop = dm.datasets["train"][0]
    assert set(crop) == {"noisy", "name"} and crop["noisy"].shape == (3, 32, 32)
    whole = dm.datasets["test"][0]
    original = read_image(folder / whole["name"], 3)
    assert np.array_equal(whole["noisy"].numpy().transpose(1, 2, 0), original)  # the file's values, 8 or 16 bit
    assert "clean" not in whole


def test_noisy_folder_errors_name_the_objective_and_the_folder(tmp_path: Path) -> None:
    folder = noisy_folder(tmp_path / "noisy")
    dm = datamodule(tmp_path, "data=noisy_folder", f"data.noisy_dir={folder}")
    with pytest.raises(ValueError, match=r"noise2noise needs two independent noisy shots of every scene; "
                                         r"data.noisy_dir=.*noisy holds one image per scene"):  # fmt: skip
        dm.serve(Noise2Noise.needs, "noise2noise")
    with pytest.raises(ValueError, match=r"supervised needs clean target images.*neighbor2neighbor"):
        dm.serve(Supervised.needs, "supervised")

    clean = noisy_folder(tmp_path / "clean", sigma=0.0)
    dm = datamodule(tmp_path, "data=noisy_folder", f"data.noisy_dir={clean}")
    dm.serve(Neighbor2Neighbor.needs, "neighbor2neighbor")
    with pytest.raises(ImageReadError, match=r"clean.*look clean \(median noise level 0\.\d\d/255"):
        dm.setup("fit")

    dm = datamodule(tmp_path, "data=noisy_folder", f"data.noisy_dir={tmp_path / 'nowhere'}")
    assert any("data.noisy_dir" in problem for problem in dm.input_problems("train"))


def test_train_refuses_an_objective_the_data_cannot_serve(tmp_path: Path) -> None:
    from denoise.tasks import train

    folder = noisy_folder(tmp_path / "noisy")
    cfg = compose_cfg("train", [*TINY, "logger=none", "data=noisy_folder", f"data.noisy_dir={folder}"], tmp_path / "r")
    with pytest.raises(ValueError, match=r"model.objective=supervised needs clean target images"):
        train(cfg)
    assert not (tmp_path / "r" / "checkpoints").exists() or not any((tmp_path / "r" / "checkpoints").iterdir())


def test_evaluate_refuses_a_folder_without_clean_images(tmp_path: Path) -> None:
    from denoise.tasks import evaluate

    folder = noisy_folder(tmp_path / "noisy")
    cfg = compose_cfg("evaluate", ["data=noisy_folder", f"data.noisy_dir={folder}", "ckpt_path=none.ckpt"], tmp_path)
    with pytest.raises(ValueError, match=r"evaluate.py scores outputs against clean images.*denoise-predict"):
        evaluate(cfg)


def test_gpu_augment_and_mixup_keep_second_shots_and_levels_aligned(cfg_train) -> None:
    """data.gpu_augment and data.mixup_alpha turn and mix every image of a sample alike: a Noise2Noise target
    stays the same window as its input, a level map stays on its pixels."""
    from tests.helpers import with_values

    dm = instantiate(with_values(cfg_train, "data.gpu_augment=true", "data.mixup_alpha=0.4").data)
    torch.manual_seed(0)
    noisy = torch.rand(6, 3, 16, 16)
    batch = {"noisy": noisy, "clean": noisy / 2, "noisy2": noisy + 1, "noise_level": noisy[:, :1].clone()}
    out = dm.augment_batch(batch)
    assert not torch.equal(out["noisy"], noisy)  # turned and mixed
    assert torch.allclose(out["noisy2"] - out["noisy"], torch.ones_like(noisy), atol=1e-6)
    assert torch.allclose(out["clean"], out["noisy"] / 2, atol=1e-6)
    levels_only = instantiate(with_values(cfg_train, "data.gpu_augment=true", "data.mixup_alpha=0").data)
    turned = levels_only.augment_batch({"noisy": noisy, "noise_level": noisy[:, :1].clone()})  # no clean images
    assert torch.equal(turned["noise_level"], turned["noisy"][:, :1])


def test_a_noisy_folder_too_small_to_hold_out_images_fails_before_training(tmp_path: Path) -> None:
    from denoise.data.datamodule_base import InputCheckError

    folder = noisy_folder(tmp_path / "noisy", count=6)
    dm = datamodule(tmp_path, "data=noisy_folder", f"data.noisy_dir={folder}")
    with pytest.raises(InputCheckError, match=r"holds 6 image\(s\), which leaves none for test .* at least 10 images"):
        dm.check_inputs(["train", "val", "test"])


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="the reference test sets are not beside this checkout")
@pytest.mark.parametrize("name", ["set12", "bsd68", "cbsd68", "kodak24", "mcmaster", "sidd_samples/clean"])
def test_clean_photos_are_refused_as_a_noisy_folder_before_training(tmp_path: Path, name: str) -> None:
    """Every standard clean test set measures below data.min_noise_sigma (largest folder median 1.94, Set12,
    against 2.3; bench/noise_diagnosis.py), so it is refused by the input check, before any training."""
    from denoise.data.datamodule_base import InputCheckError

    dm = datamodule(tmp_path, "data=noisy_folder", f"data.noisy_dir={SHARED_DATA / name}", "data.patch_size=32")
    with pytest.raises(InputCheckError, match=r"images look clean \(median noise level (0|1)\.\d\d/255"):
        dm.check_inputs(["train", "val", "test"])


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="the reference test sets are not beside this checkout")
def test_real_noisy_photos_pass_the_clean_check(tmp_path: Path) -> None:
    """SIDD's noisy sRGB photos: folder median 10.1, well above the threshold."""
    folder = SHARED_DATA / "sidd_samples" / "noisy"
    dm = datamodule(tmp_path, "data=noisy_folder", f"data.noisy_dir={folder}", "data.patch_size=32")
    dm.check_inputs(["train", "val", "test"])
