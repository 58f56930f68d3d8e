"""The crop-once patch store: exact crops, reuse, rebuild when stale, aligned training samples, workers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from denoise.data.cache import PatchStore, StorePatches
from denoise.data.io import read_raw, write_image
from denoise.data.nind import scan as scan_nind
from denoise.data.sidd import scan as scan_sidd
from denoise.data.store_build import grid
from tests.fixtures.real import SIDD_SCENES, make_nind, make_sidd
from tests.helpers import ROOT


def test_grid_covers_the_edges() -> None:
    assert grid(100, 48, 32) == [0, 32, 52]
    assert grid(96, 48, 48) == [0, 48]
    assert grid(40, 48, 32) == []


def test_store_holds_the_exact_crops_and_is_reused(tmp_path: Path) -> None:
    pairs = scan_sidd(make_sidd(tmp_path / "sidd", "medium", scenes=SIDD_SCENES[:2]))  # 4 pairs of 72x96
    store = PatchStore.build(pairs, tmp_path / "cache", "sidd", size=48, stride=32, progress=False)
    boxes = [(t, left) for t in grid(72, 48, 32) for left in grid(96, 48, 32)]  # 2 x 3 per pair
    assert store.count == 4 * len(boxes) == 24 and store.index["dtype"] == "uint8"
    noisy, clean = store.arrays
    first = store.index["pairs"][1]
    top, left = boxes[4]
    source_noisy, source_clean = read_raw(pairs[1].noisy), read_raw(pairs[1].clean[0])
    assert np.array_equal(noisy[first["first"] + 4], source_noisy[top : top + 48, left : left + 48])
    assert np.array_equal(clean[first["first"] + 4], source_clean[top : top + 48, left : left + 48])

    stamp = (store.folder / "index.json").stat().st_mtime_ns
    again = PatchStore.build(pairs, tmp_path / "cache", "sidd", size=48, stride=32, progress=False)
    assert again.folder == store.folder and (again.folder / "index.json").stat().st_mtime_ns == stamp
    other = PatchStore.build(pairs, tmp_path / "cache", "sidd", size=48, stride=48, progress=False)
    assert other.folder != store.folder  # other crop settings: another store


def test_a_changed_file_makes_the_store_stale(tmp_path: Path) -> None:
    pairs = scan_sidd(make_sidd(tmp_path / "sidd", "small", scenes=SIDD_SCENES[:2]))
    first = PatchStore.build(pairs, tmp_path / "cache", "sidd", size=48, stride=32, progress=False)
    write_image(pairs[0].noisy, np.zeros((72, 96, 3), np.float32))
    rebuilt = PatchStore.build(pairs, tmp_path / "cache", "sidd", size=48, stride=32, progress=False)
    assert rebuilt.folder != first.folder
    assert rebuilt.arrays[0][0].max() == 0  # the new content, not the stale one


def test_sixteen_bit_sources_are_stored_exactly(tmp_path: Path) -> None:
    pairs = [p for p in scan_nind(make_nind(tmp_path / "nind")) if p.group == "scene-a"]
    store = PatchStore.build(pairs, tmp_path / "cache", "nind", size=32, stride=32, progress=False)
    assert store.index["dtype"] == "uint16"
    png = next(i for i, p in enumerate(pairs) if p.noisy.suffix == ".png")
    jpg = next(i for i, p in enumerate(pairs) if p.noisy.suffix == ".jpg")
    noisy, clean = store.arrays
    entry = store.index["pairs"]
    assert np.array_equal(noisy[entry[png]["first"]], read_raw(pairs[png].noisy)[:32, :32])  # 16-bit as is
    assert np.array_equal(noisy[entry[jpg]["first"]], read_raw(pairs[jpg].noisy)[:32, :32].astype(np.uint16) * 257)
    assert np.array_equal(clean[entry[png]["first"]], read_raw(pairs[png].clean[0])[:32, :32])


def test_training_samples_stay_aligned_and_work_in_workers(tmp_path: Path) -> None:
    """With noisy == clean in the store, every sample must come out identical: same crop, same flip."""
    folder = tmp_path / "same"
    rng = np.random.default_rng(0)
    for i in range(3):
        image = rng.random((64, 64, 3)).astype(np.float32)
        write_image(folder / "noisy" / f"{i}.png", image)
        write_image(folder / "clean" / f"{i}.png", image)
    from denoise.data.folder_pairs import match_by_name

    store = PatchStore.build(match_by_name(folder / "noisy", folder / "clean"), tmp_path / "cache", "same", 48, 16,
                             progress=False)  # fmt: skip
    dataset = StorePatches([store], [1.0], patch_size=32, samples_per_epoch=64)
    loader = DataLoader(dataset, batch_size=8, num_workers=2)
    batches = list(loader)
    assert len(batches) == 8
    for batch in batches:
        assert batch["noisy"].shape == (8, 3, 32, 32) and batch["noisy"].dtype == torch.uint8  # 8-bit store

        assert torch.equal(batch["noisy"], batch["clean"])
    assert not torch.equal(batches[0]["noisy"][0], batches[0]["noisy"][1])  # really random crops


@pytest.mark.slow
def test_prepare_command(tmp_path: Path) -> None:
    root = make_sidd(tmp_path / "sidd", "medium", scenes=SIDD_SCENES[:3])
    result = subprocess.run(
        [sys.executable, "-m", "denoise.cli.prepare", "data=sidd", f"data.root={root}", "data.store.size=48",
         "data.store.stride=32", f"paths.cache_dir={tmp_path / 'cache'}", "data.datasets.sidd.val_fraction=0.34",
         "data.datasets.sidd.test_fraction=0", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=ROOT, capture_output=True, text=True, check=False, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    (folder,) = (tmp_path / "cache" / "patches").iterdir()
    assert folder.name.startswith("sidd-") and (folder / "noisy.npy").is_file()
    assert "patch stores" in result.stdout and str(2 * 2 * 6) in result.stdout  # 2 train instances x 2 x 6 crops


def test_gpu_side_augmentation_keeps_pairs_aligned() -> None:
    from denoise.data.datamodule import DenoiseDataModule

    corner = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)
    module = DenoiseDataModule(gpu_augment=True, mixup_alpha=1.2)
    torch.manual_seed(0)
    image = torch.rand(16, 3, 24, 24)
    out = module.augment_batch({"noisy": image.clone(), "clean": image.clone(), "name": ["x"] * 16})
    assert out["noisy"].shape == (16, 3, 24, 24)
    assert torch.allclose(out["noisy"], out["clean"])  # the same transform and the same mixup for both
    assert not torch.allclose(out["noisy"], image)  # and it really changed the batch
    flips_only = DenoiseDataModule(gpu_augment=True).augment_batch({"noisy": image, "clean": image + 1})
    assert torch.allclose(flips_only["clean"] - flips_only["noisy"], torch.ones(16, 3, 24, 24))
    assert torch.equal(flips_only["noisy"].flatten().sort().values, image.flatten().sort().values)  # exact
    seen = {tuple(DenoiseDataModule(gpu_augment=True).augment_batch({"noisy": corner, "clean": corner})["noisy"]
                  .flatten().tolist()) for _ in range(60)}  # fmt: skip
    assert len(seen) == 8  # all 8 flips/rotations of an asymmetric 2x2 image occur


def test_uint8_batches_become_float_after_transfer() -> None:
    from denoise.data.datamodule import DenoiseDataModule

    batch = {"noisy": torch.tensor([[[[0, 255]]]], dtype=torch.uint8), "clean": torch.zeros(1, 1, 1, 2), "name": ["x"]}
    out = DenoiseDataModule().on_after_batch_transfer(batch, 0)
    assert out["noisy"].dtype == torch.float32 and out["noisy"].flatten().tolist() == [0.0, 1.0]
    assert out["clean"] is batch["clean"] and out["name"] == ["x"]


@pytest.mark.slow
def test_ddp_ranks_share_one_store(tmp_path: Path) -> None:
    """trainer=ddp_sim on SIDD: one process builds the store in prepare_data, both ranks train from it."""
    from tests.helpers import read_results, run_cli

    root = make_sidd(tmp_path / "sidd", "medium", scenes=SIDD_SCENES[:4])
    cache = tmp_path / "cache"
    result = run_cli(
        "train.py", "data=sidd", f"data.root={root}", "trainer=ddp_sim", "data.store.size=48", "data.store.stride=32",
        f"paths.cache_dir={cache}", "data.patch_size=32", "data.batch_size=2", "data.samples_per_epoch=8",
        "data.num_workers=0", "data.pin_memory=false", "data.datasets.sidd.val_fraction=0.25", "model.net.depth=10",
        "model.net.channels=8", "trainer.max_epochs=1", "logger=none", run_dir=tmp_path / "run",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_results(tmp_path / "run")["world_size"] == 2
    stores = list((cache / "patches").iterdir())
    assert len(stores) == 1 and not any(".tmp-" in p.name for p in stores)
    assert (stores[0] / "index.json").is_file()


def test_store_refuses_a_mismatched_pair_like_the_decoding_path(tmp_path: Path) -> None:
    from denoise.data.io import ImageReadError
    from denoise.data.pairs import ImagePair

    write_image(tmp_path / "n.png", np.zeros((64, 64, 3), np.float32))
    write_image(tmp_path / "c.png", np.zeros((64, 60, 3), np.float32))
    pair = ImagePair(tmp_path / "n.png", (tmp_path / "c.png",), "x", "sidd", "g")
    try:
        PatchStore.build([pair], tmp_path / "cache", "sidd", size=32, stride=32, progress=False)
    except ImageReadError as err:
        assert "pair x: the images differ in size" in str(err)
    else:
        raise AssertionError("a mismatched pair went into the store")


@pytest.mark.parametrize("damage", ["index", "array"])
def test_a_damaged_store_is_rebuilt_not_trained_on(tmp_path: Path, damage: str) -> None:
    """A store cut short (a copy interrupted, a disk that filled) is found by its headers and rebuilt."""
    pairs = scan_sidd(make_sidd(tmp_path / "sidd", "medium", scenes=SIDD_SCENES[:2]))
    store = PatchStore.build(pairs, tmp_path / "cache", "sidd", size=48, stride=32, progress=False)
    expected = np.array(store.arrays[0])
    if damage == "index":
        (store.folder / "index.json").write_text('{"version": 1, "patc')
    else:
        data = (store.folder / "noisy.npy").read_bytes()
        (store.folder / "noisy.npy").write_bytes(data[: len(data) // 3])
    rebuilt = PatchStore.build(pairs, tmp_path / "cache", "sidd", size=48, stride=32, progress=False)
    assert rebuilt.folder == store.folder and np.array_equal(np.array(rebuilt.arrays[0]), expected)
