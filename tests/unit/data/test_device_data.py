"""GPU defaults a user gets without tuning: training batches drawn on the device (``data.on_device``) with the
CPU path's statistics, and ``num_workers``/``pin_memory: auto`` from the machine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from denoise.data import datamodule_base as datamodule_module
from denoise.data.datamodule import PairedDataModule, SyntheticDataModule
from denoise.data.folder_pairs import FolderPairs
from denoise.data.noise import GaussianNoise, PoissonGaussianNoise
from denoise.data.synthetic import DevicePatches
from denoise.data.transforms import dihedral
from denoise.tasks import train
from tests.helpers import TINY, compose_cfg, read_results

CPU = torch.device("cpu")


def _position_image(height: int, width: int) -> np.ndarray:
    """A 16-bit image whose value is its pixel's index (row * width + col): every crop says where it came from."""
    return np.arange(height * width, dtype=np.uint16).reshape(height, width, 1)


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_crops_are_uniform_and_the_8_transforms_exact() -> None:
    """Every crop is one of the 8 flips/rotations (exactly) of the window at a uniformly drawn position; the
    8 transforms and the positions come out uniformly."""
    height, width, size = 40, 60, 8
    image = _position_image(height, width)
    patches = DevicePatches([image], GaussianNoise(0), size, augment=True)
    crops = patches.clean(4000, CPU, _generator()) * 65535.0
    crops = crops.round().long()[:, 0]
    transforms = np.zeros(8, dtype=int)
    tops, lefts = [], []
    for crop in crops:
        top, left = divmod(int(crop.min()), width)  # the window's top-left pixel has its smallest index
        window = torch.from_numpy(image[top : top + size, left : left + size, 0].astype(np.int64))
        matches = [k for k in range(8) if torch.equal(dihedral(window, k), crop)]
        assert len(matches) == 1, (top, left)
        transforms[matches[0]] += 1
        tops.append(top)
        lefts.append(left)
    assert transforms.min() > 4000 / 8 * 0.8 and transforms.max() < 4000 / 8 * 1.2, transforms
    assert min(tops) == 0 and max(tops) == height - size and min(lefts) == 0 and max(lefts) == width - size
    histogram = np.histogram(tops, bins=11, range=(0, height - size + 1))[0]
    assert histogram.min() > 4000 / 11 * 0.75 and histogram.max() < 4000 / 11 * 1.25, histogram
    assert np.mean(lefts) == pytest.approx((width - size) / 2, abs=1.0)


def test_without_augmentation_crops_are_the_windows_and_images_are_picked_uniformly() -> None:
    small, large = _position_image(16, 16), _position_image(50, 30) + 1000
    patches = DevicePatches([small, large], GaussianNoise(0), 8, augment=False)
    crops = (patches.clean(2000, CPU, _generator(1)) * 65535.0).round().long()[:, 0]
    from_large = 0
    for crop in crops:
        first = int(crop[0, 0])
        source, offset, width = (large, 1000, 30) if first >= 1000 else (small, 0, 16)
        top, left = divmod(first - offset, width)
        expected = torch.from_numpy(source[top : top + 8, left : left + 8, 0].astype(np.int64))
        assert torch.equal(crop, expected)
        from_large += first >= 1000
    assert from_large / 2000 == pytest.approx(0.5, abs=0.05)  # an image uniformly, as RandomPatches picks


def test_noise_on_the_device_has_the_configured_statistics() -> None:
    flat = np.full((64, 64, 3), 128, dtype=np.uint8)
    clean_value = 128 / 255
    fixed = DevicePatches([flat], GaussianNoise(25), 32).draw(64, CPU, _generator(2))
    assert torch.allclose(fixed["clean"], torch.full_like(fixed["clean"], clean_value))
    assert (fixed["noisy"] - fixed["clean"]).std().item() * 255 == pytest.approx(25, rel=0.01)
    blind = DevicePatches([flat], GaussianNoise([0, 50]), 32).draw(400, CPU, _generator(3))
    per_image = (blind["noisy"] - blind["clean"]).flatten(1).std(dim=1) * 255  # one level per image
    assert per_image.min() < 3 and per_image.max() > 47
    assert per_image.mean().item() == pytest.approx(25, abs=2.0)
    shot = DevicePatches([flat], PoissonGaussianNoise(a=0.01, sigma=5), 32).draw(64, CPU, _generator(4))
    variance = (shot["noisy"] - shot["clean"]).var().item()
    assert variance == pytest.approx(0.01 * clean_value + (5 / 255) ** 2, rel=0.03)


def test_draws_are_a_function_of_the_seed_epoch_and_batch() -> None:
    """Batch ``i`` of epoch ``e`` is the same whenever it is drawn (so a run resumed mid-epoch draws what the
    uninterrupted run drew) and differs for another batch, epoch or seed."""

    def module(seed: int) -> SyntheticDataModule:
        torch.manual_seed(seed)  # what seed_everything does before the datamodule is built
        return SyntheticDataModule(noise=GaussianNoise(sigma=25), patch_size=32, batch_size=4, on_device=True)

    first, again = module(7), module(7)
    batch = first.draw_batch(CPU, epoch=2, index=5)["noisy"]
    first.draw_batch(CPU, epoch=0, index=0)  # what was drawn before does not matter
    assert torch.equal(again.draw_batch(CPU, epoch=2, index=5)["noisy"], batch)
    assert torch.equal(first.draw_batch(CPU, epoch=2, index=5)["noisy"], batch)
    assert not torch.equal(first.draw_batch(CPU, epoch=2, index=6)["noisy"], batch)
    assert not torch.equal(first.draw_batch(CPU, epoch=3, index=5)["noisy"], batch)
    assert not torch.equal(module(8).draw_batch(CPU, epoch=2, index=5)["noisy"], batch)


@pytest.mark.slow
def test_on_device_training_runs_and_learns(tmp_path: Path) -> None:
    run = tmp_path / "run"
    overrides = [o for o in TINY if not o.startswith(("data.samples_per_epoch", "data.batch_size", "model.net"))]
    overrides += ["logger=none", "data.on_device=true", "data.samples_per_epoch=2048", "data.batch_size=8"]
    overrides += ["model.net.depth=20", "model.net.channels=16", "model.optimizer.lr=2e-3"]
    train(compose_cfg("train", overrides, run))
    results = read_results(run)
    assert results["global_step"] == 2048 // 8
    assert results["test/psnr"] > results["test/psnr_noisy"] + 6.0  # the CPU loader path: +7.7 dB


def test_on_device_refuses_settings_it_replaces() -> None:
    with pytest.raises(ValueError, match=r"data\.on_device=true .* data\.fixed_patches=false"):
        SyntheticDataModule(noise=GaussianNoise(), on_device=True, fixed_patches=True)
    with pytest.raises(ValueError, match=r"data\.on_device=true .* data\.gpu_augment=false"):
        SyntheticDataModule(noise=GaussianNoise(), on_device=True, gpu_augment=True)


def test_loader_settings_follow_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datamodule_module, "available_cores", lambda: 16)
    synthetic = SyntheticDataModule(noise=GaussianNoise())
    assert synthetic.num_workers == "auto" and synthetic.pin_memory == "auto"
    assert synthetic.loader_workers("cuda") == 8 and synthetic.loader_pin_memory("cuda")
    assert synthetic.loader_workers("cpu") == 0 and not synthetic.loader_pin_memory("cpu")
    paired = PairedDataModule(datasets={"x": FolderPairs("noisy", "clean")})
    assert paired.loader_workers("cpu") == 2  # decoding photos is worth two processes on a CPU
    monkeypatch.setattr(datamodule_module, "available_cores", lambda: 4)
    assert synthetic.loader_workers("cuda") == 3
    fixed = SyntheticDataModule(noise=GaussianNoise(), num_workers=5, pin_memory=False)
    assert fixed.loader_workers("cuda") == 5 and not fixed.loader_pin_memory("cuda")
    with pytest.raises(TypeError, match=r"data\.datasets\.x is a object, not a dataset layout"):
        PairedDataModule(datasets={"x": object()})
    with pytest.raises(ValueError, match=r"data\.num_workers='many': expected auto or a number >= 0"):
        SyntheticDataModule(noise=GaussianNoise(), num_workers="many")


def test_trainer_gpu_gets_the_gpu_loader_without_tuning(tmp_path: Path) -> None:
    cfg = compose_cfg("train", ["trainer=gpu"], tmp_path)
    assert cfg.data.num_workers == "auto" and cfg.data.pin_memory == "auto" and cfg.trainer.accelerator == "gpu"
