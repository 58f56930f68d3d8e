"""Image IO, noise models and the synthetic datamodule, including bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from denoise.data.datamodule import SyntheticDataModule
from denoise.data.io import ImageReadError, list_images, read_image, read_raw, write_image
from denoise.data.noise import GaussianNoise, PoissonGaussianNoise
from denoise.data.synthetic import EMBEDDED_SPLITS, NoisyImages, RandomPatches, embedded_files

GAUSS25 = GaussianNoise(sigma=25)


@pytest.mark.parametrize("bit_depth", [8, 16])
@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_write_read_round_trip_is_byte_exact(tmp_path: Path, bit_depth: int, channels: int, suffix: str) -> None:
    rng = np.random.default_rng(0)
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    data = rng.integers(0, np.iinfo(dtype).max + 1, size=(17, 23, channels), dtype=dtype)
    path = write_image(tmp_path / f"x{suffix}", data, bit_depth)
    back = read_raw(path)
    assert back.dtype == dtype and back.shape == data.shape
    assert np.array_equal(back, data)


def test_read_image_scales_by_bit_depth(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png", np.full((4, 4, 3), 65535, np.uint16), 16)
    write_image(tmp_path / "b.png", np.full((4, 4, 3), 51, np.uint8), 8)
    assert np.all(read_image(tmp_path / "a.png") == 1.0)
    assert np.allclose(read_image(tmp_path / "b.png"), 0.2)
    gray = read_image(tmp_path / "b.png", channels=1)
    assert gray.shape == (4, 4, 1) and np.allclose(gray, 0.2)


def test_corrupt_image_error_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    with pytest.raises(ImageReadError, match=r"broken\.png.*corrupt"):
        read_raw(bad)


def test_unsupported_bit_depth_is_refused(tmp_path: Path) -> None:
    import cv2

    path = tmp_path / "float.tif"
    cv2.imwrite(str(path), np.zeros((4, 4), np.float32))
    with pytest.raises(ImageReadError, match=r"float\.tif.*float32.*8-bit or 16-bit"):
        read_raw(path)


def test_folder_errors_name_the_key_and_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"data\.test_dirs\[0\]: folder .*nowhere does not exist"):
        list_images(tmp_path / "nowhere", key="data.test_dirs[0]")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(FileNotFoundError, match=r"empty holds no images.*\.png"):
        list_images(tmp_path / "empty")


def test_gaussian_noise_has_the_configured_sigma() -> None:
    clean = torch.full((3, 256, 256), 0.5)
    noisy = GaussianNoise(25)(clean, torch.Generator().manual_seed(0))
    assert abs((noisy - clean).std().item() * 255 - 25) < 0.25
    assert abs((noisy - clean).mean().item()) < 1e-3


def test_blind_sigma_range_draws_one_level_per_image() -> None:
    noise, clean = GaussianNoise([5, 50]), torch.zeros(1, 128, 128)
    sigmas = [noise(clean, torch.Generator().manual_seed(s)).std().item() * 255 for s in range(20)]
    assert min(sigmas) >= 5 * 0.95 and max(sigmas) <= 50 * 1.05
    assert max(sigmas) - min(sigmas) > 20  # really varies


def test_poisson_gaussian_variance_is_a_x_plus_b() -> None:
    a, sigma = 0.01, 5.0
    noise = PoissonGaussianNoise(a=a, sigma=sigma)
    for level in (0.2, 0.8):
        clean = torch.full((1, 512, 512), level)
        var = (noise(clean, torch.Generator().manual_seed(1)) - clean).var().item()
        expected = a * level + (sigma / 255) ** 2
        assert abs(var - expected) / expected < 0.03


def test_a_noise_model_is_built_from_its_spec_and_gives_it_back(tmp_path: Path) -> None:
    """conf/noise/*.yaml name their class by ``_target_`` (the rule of every part): each builds, and the model's
    ``config()`` is that spec again; an unknown noise names the group and its options, a bad level names its key,
    and a plain mapping reaching the DataModule says what it expected."""
    from hydra.errors import MissingConfigException
    from omegaconf import OmegaConf

    from denoise.tasks import instantiate
    from tests.helpers import CONF, compose_cfg

    for path in sorted((CONF / "noise").glob("*.yaml")):
        spec = OmegaConf.load(path)
        noise = instantiate(spec)
        assert noise.config() == OmegaConf.to_container(spec), path.stem
    blind = instantiate(compose_cfg("train", ["noise.sigma=[0,55]"], tmp_path / "a").noise)
    assert blind.config()["sigma"] == [0.0, 55.0] and blind.known_sigma() is None
    options = r"(?s)noise/speckle.*Available options in .noise.:\n\tgaussian\n\tpoisson_gaussian"
    with pytest.raises(MissingConfigException, match=options):
        compose_cfg("train", ["noise=speckle"], tmp_path / "b")
    with pytest.raises(ValueError, match=r"noise\.sigma must be a number or a \[low, high\] range"):
        GaussianNoise(sigma="loud")
    with pytest.raises(TypeError, match=r"data\.noise is a dict .*; expected a noise model: a config of conf/noise/"):
        SyntheticDataModule(noise={"type": "gaussian", "sigma": 25})


def test_eval_noise_is_fixed_per_image() -> None:
    images = [np.full((20, 20, 3), 128, np.uint8), np.full((20, 20, 3), 128, np.uint8)]
    first = NoisyImages(images, ["a.png", "b.png"], GaussianNoise(25), seed=0)
    again = NoisyImages(images[::-1], ["b.png", "a.png"], GaussianNoise(25), seed=0)
    assert torch.equal(first[0]["noisy"], again[1]["noisy"])  # same image name, same noise, any order
    assert not torch.equal(first[0]["noisy"], first[1]["noisy"])  # different images differ
    other_seed = NoisyImages(images, ["a.png", "b.png"], GaussianNoise(25), seed=1)
    assert not torch.equal(first[0]["noisy"], other_seed[0]["noisy"])


def test_training_crops_are_aligned_and_noisy() -> None:
    torch.manual_seed(0)
    ramp = np.tile(np.arange(100, dtype=np.uint8)[None, :, None], (80, 1, 3))
    dataset = RandomPatches([ramp], ["ramp.png"], GaussianNoise(25), patch_size=32, samples_per_epoch=64)
    residuals = []
    for i in range(len(dataset)):
        sample = dataset[i]
        assert sample["noisy"].shape == sample["clean"].shape == (3, 32, 32)
        residuals.append(sample["noisy"] - sample["clean"])
    assert abs(torch.stack(residuals).std().item() * 255 - 25) < 0.5


def test_fixed_patches_repeat_exactly() -> None:
    """Every sample is a function of the seed and its global number; with ``fixed`` each epoch repeats the first."""
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    fixed = RandomPatches([image], ["x"], GaussianNoise(25), 16, 8, seed=3, fixed=True)
    assert torch.equal(fixed[5]["noisy"], fixed[5 + 8]["noisy"])  # sample 5 of the next epoch
    assert not torch.equal(fixed[5]["clean"], fixed[6]["clean"])
    fresh = RandomPatches([image], ["x"], GaussianNoise(25), 16, 8, seed=3)
    assert torch.equal(fresh[5]["noisy"], fresh[5]["noisy"])  # no hidden global state
    assert not torch.equal(fresh[5]["noisy"], fresh[5 + 8]["noisy"])
    other_seed = RandomPatches([image], ["x"], GaussianNoise(25), 16, 8, seed=4)
    assert not torch.equal(fresh[5]["noisy"], other_seed[5]["noisy"])


def test_embedded_split_is_disjoint_and_present() -> None:
    names = [set(v) for v in EMBEDDED_SPLITS.values()]
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    for split in EMBEDDED_SPLITS:
        assert all(p.is_file() for p in embedded_files(split))


@pytest.mark.parametrize("grayscale", [False, True])
def test_datamodule_channels_follow_grayscale(grayscale: bool) -> None:
    channels = 1 if grayscale else 3
    dm = SyntheticDataModule(noise=GAUSS25, grayscale=grayscale, channels=channels, batch_size=2, patch_size=32)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["noisy"].shape == (2, channels, 32, 32)
    val = next(iter(dm.val_dataloader()))
    assert val["clean"].shape == (1, channels, 400, 600)  # coffee, whole
    assert val["name"] == ["coffee.png"]


def test_datamodule_channel_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"data\.channels=3 contradicts data\.grayscale=True"):
        SyntheticDataModule(noise=GAUSS25, grayscale=True, channels=3)


def test_user_folders_of_16_bit_images(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for i in range(2):
        write_image(tmp_path / f"{i}.png", rng.integers(0, 65536, (40, 50, 3), dtype=np.uint16), 16)
    dm = SyntheticDataModule(noise=GAUSS25, test_dirs=[str(tmp_path)])
    dm.setup("test")
    sample = dm.dataset("test")[1]
    expected = torch.from_numpy(read_raw(tmp_path / "1.png").astype(np.float32) / 65535).permute(2, 0, 1)
    assert torch.equal(sample["clean"], expected)


def test_datamodule_bad_folders_fail_at_setup(tmp_path: Path) -> None:
    dm = SyntheticDataModule(noise=GAUSS25, test_dirs=[str(tmp_path / "missing")])
    with pytest.raises(FileNotFoundError, match=r"data\.test_dirs\[0\].*missing does not exist"):
        dm.setup("test")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.jpg").write_bytes(b"not a jpeg")
    dm = SyntheticDataModule(noise=GAUSS25, test_dirs=[str(tmp_path / "bad")])
    with pytest.raises(ImageReadError, match=r"x\.jpg"):
        dm.setup("test")


def test_training_image_smaller_than_patch_is_an_error(tmp_path: Path) -> None:
    write_image(tmp_path / "tiny.png", np.zeros((20, 20, 3), np.uint8))
    dm = SyntheticDataModule(noise=GAUSS25, train_dirs=[str(tmp_path)], patch_size=48)
    with pytest.raises(ValueError, match=r"tiny\.png is 20x20, smaller than data\.patch_size=48"):
        dm.setup("fit")


def test_dihedral_view_matches_the_tensor_transform() -> None:
    from denoise.data.io import array2tensor
    from denoise.data.transforms import dihedral, dihedral_view

    image = np.random.default_rng(0).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    for index in range(8):
        assert torch.equal(
            array2tensor(np.ascontiguousarray(dihedral_view(image, index))), dihedral(array2tensor(image), index)
        )
