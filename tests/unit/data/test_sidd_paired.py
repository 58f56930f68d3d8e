"""SIDD (both sRGB releases, .mat blocks, the benchmark submission) and data=paired, on fixtures in the
real layouts and on the 12 real SIDD pairs of ../shared/data/sidd_samples."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from denoise.data.datamodule import PairedDataModule
from denoise.data.folder_pairs import FolderPairs, match_by_name
from denoise.data.io import ImageReadError, read_raw, write_image
from denoise.data.pairs import ImagePair, load_pair
from denoise.data.sidd import SIDD, parse_scene, read_submission, scan
from denoise.tasks import evaluate, train
from tests.fixtures.real import SIDD_SCENES, make_sidd, sidd_blocks, write_mat_v5, write_mat_v73
from tests.fixtures.small import identity_dncnn
from tests.helpers import SHARED_DATA, TINY_REAL, compose_cfg, read_results


def block_psnr(noisy: np.ndarray, clean: np.ndarray) -> float:
    """The published convention, computed directly: mean over blocks of each block's PSNR."""
    flat_n = noisy.reshape(-1, *noisy.shape[-3:]).astype(np.float64) / 255
    flat_c = clean.reshape(-1, *clean.shape[-3:]).astype(np.float64) / 255
    return float(np.mean([10 * math.log10(1 / np.mean((n - c) ** 2)) for n, c in zip(flat_n, flat_c, strict=True)]))


@pytest.mark.parametrize(("release", "count"), [("small", 6), ("medium", 12)])
def test_both_releases_are_detected_and_paired_by_name(tmp_path: Path, release: str, count: int) -> None:
    folder = make_sidd(tmp_path, release)
    for root in (folder, tmp_path):  # the release folder itself, or the folder that holds it
        pairs = scan(root)
        assert len(pairs) == count
        for pair in pairs:
            assert pair.clean[0].name == pair.noisy.name.replace("NOISY", "GT")
            assert pair.clean[0].parent == pair.noisy.parent
    medium = [p for p in scan(folder) if p.meta["instance"] == "0003"]
    assert [p.name for p in medium][:1] == ["0003_001_GP_00800_00350_5500_H/010"]
    assert medium[0].meta | {} == {
        **medium[0].meta,
        "phone": "GP",
        "camera": "Google Pixel",
        "iso": 800,
        "shutter": 350,
        "temperature": 5500,
        "brightness": "high",
    }


def test_scene_fields() -> None:
    assert parse_scene("0054_002_IP_00400_00400_3200_L")["iso"] == 400
    with pytest.raises(ValueError, match=r"'0054_002_XX_00400_00400_3200_L' does not match .*phones"):
        parse_scene("0054_002_XX_00400_00400_3200_L")


def test_split_is_by_scene_instance(tmp_path: Path) -> None:
    root = make_sidd(tmp_path, "medium")
    splits = SIDD(str(root), val_fraction=0.34).splits()
    train_groups, val_groups = {p.group for p in splits["train"]}, {p.group for p in splits["val"]}
    assert len(val_groups) == 2 and not train_groups & val_groups
    assert all(len([p for p in splits["val"] if p.group == g]) == 2 for g in val_groups)  # _010 and _011 together
    explicit = SIDD(str(root), val_instances=["1", "0004"]).splits()
    assert {p.group for p in explicit["val"]} == {"0001", "0004"}
    with pytest.raises(ValueError, match=r"held-out groups \['0099'\] are not in the dataset"):
        SIDD(str(root), val_instances=["0099"]).splits()


def test_bad_layouts_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"(?s)data.root=.*nowhere: no such folder.*GT_SRGB_010.PNG.*published"):
        scan(tmp_path / "nowhere")
    (tmp_path / "empty" / "Data").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"(?s)Data holds no scene folders.*Expected a SIDD"):
        scan(tmp_path / "empty")
    root = make_sidd(tmp_path / "orphan", "medium", scenes=SIDD_SCENES[:2])
    (root / "Data" / SIDD_SCENES[1] / "0002_NOISY_SRGB_011.PNG").unlink()
    with pytest.raises(FileNotFoundError, match=r"0002_GT_SRGB_011.PNG has no noisy twin: 0002_NOISY_SRGB_011.PNG"):
        scan(root)


def test_mismatched_and_corrupt_pairs_name_the_files(tmp_path: Path) -> None:
    write_image(tmp_path / "n.png", np.zeros((10, 12, 3), np.float32))
    write_image(tmp_path / "c.png", np.zeros((10, 14, 3), np.float32))
    pair = ImagePair(tmp_path / "n.png", (tmp_path / "c.png",), "x", "sidd", "g")
    with pytest.raises(ImageReadError, match=r"pair x: the images differ in size .*n.png is 10x12, .*c.png is 10x14"):
        load_pair(pair, 3)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(ImageReadError, match=r"bad.png: it is corrupt"):
        load_pair(ImagePair(tmp_path / "bad.png", (tmp_path / "c.png",), "y", "sidd", "g"), 3)


@pytest.mark.slow
@pytest.mark.parametrize("writer", [write_mat_v5, write_mat_v73], ids=["matlab-v5", "matlab-v7.3"])
def test_validation_blocks_score_like_a_direct_numpy_computation(tmp_path: Path, writer) -> None:
    root = make_sidd(tmp_path, "small", scenes=SIDD_SCENES[:3])
    noisy, clean = sidd_blocks(images=2, blocks=3)
    writer(root / "ValidationNoisyBlocksSrgb.mat", "ValidationNoisyBlocksSrgb", noisy)
    writer(root / "ValidationGtBlocksSrgb.mat", "ValidationGtBlocksSrgb", clean)
    ckpt = identity_dncnn(tmp_path / "identity.pt")
    results = evaluate(
        compose_cfg(
            "evaluate", ["data=sidd", f"data.root={root}", "model=dncnn", f"ckpt_path={ckpt}"], tmp_path / "eval"
        )
    )
    assert results["images"] == 6  # the blocks, not the scenes
    assert results["test/psnr_noisy"] == pytest.approx(block_psnr(noisy, clean), abs=1e-4)
    assert results["test/psnr"] == pytest.approx(results["test/psnr_noisy"], abs=1e-4)  # the identity network


@pytest.mark.slow
def test_benchmark_submission_decodes_back_to_the_exact_blocks(tmp_path: Path) -> None:
    root = make_sidd(tmp_path, "medium", scenes=SIDD_SCENES[:2])
    benchmark, _ = sidd_blocks(images=2, blocks=3, seed=5)
    write_mat_v73(root / "BenchmarkNoisyBlocksSrgb.mat", "BenchmarkNoisyBlocksSrgb", benchmark)
    ckpt = identity_dncnn(tmp_path / "identity.pt")
    out = tmp_path / "eval"
    evaluate(
        compose_cfg(
            "evaluate",
            [
                "data=sidd",
                f"data.root={root}",
                "data.datasets.sidd.val_fraction=0.5",
                "model=dncnn",
                f"ckpt_path={ckpt}",
            ],
            out,
        )
    )
    ids, decoded = read_submission(out / "SubmitSrgb.csv")
    assert ids == list(range(6))
    assert (out / "SubmitSrgb.csv").read_text().splitlines()[0] == "ID,BLOCK"
    decoded = decoded.reshape(benchmark.shape)
    assert np.array_equal(decoded, benchmark)  # identity network: rounding gives back every byte
    mat = scipy.io.loadmat(out / "SubmitSrgb.mat")
    assert mat["DenoisedBlocksSrgb"].shape == (2, 3)
    assert np.array_equal(mat["DenoisedBlocksSrgb"][1, 2], benchmark[1, 2])
    assert mat["TimeMPSrgb"].shape == (1, 1) and mat["TimeMPSrgb"][0, 0] > 0


def test_lightning_fit_and_test_on_sidd(tmp_path: Path) -> None:
    root = make_sidd(tmp_path, "medium")
    noisy, clean = sidd_blocks(images=1, blocks=2)
    write_mat_v5(root / "ValidationNoisyBlocksSrgb.mat", "ValidationNoisyBlocksSrgb", noisy)
    write_mat_v5(root / "ValidationGtBlocksSrgb.mat", "ValidationGtBlocksSrgb", clean)
    overrides = ["data=sidd", f"data.root={root}", *TINY_REAL]
    run = tmp_path / "run"
    train(compose_cfg("train", overrides, run))
    results = read_results(run)
    assert results["test/psnr_noisy"] == pytest.approx(block_psnr(noisy, clean), abs=1e-3)
    assert np.isfinite(results["test/psnr"]) and results["global_step"] == 2


def test_paired_folders_match_by_name(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        write_image(tmp_path / "noisy" / f"{name}.png", np.zeros((8, 8, 3), np.float32))
        write_image(tmp_path / "clean" / f"{name}.png", np.zeros((8, 8, 3), np.float32))
    assert [p.name for p in match_by_name(tmp_path / "noisy", tmp_path / "clean")] == ["a.png", "b.png", "c.png"]
    (tmp_path / "clean" / "b.png").unlink()
    (tmp_path / "clean" / "c.png").unlink()
    write_image(tmp_path / "clean" / "d.png", np.zeros((8, 8, 3), np.float32))
    with pytest.raises(FileNotFoundError, match=r"3 file\(s\) .* have no partner") as lonely:
        match_by_name(tmp_path / "noisy", tmp_path / "clean")
    for line in ("noisy/b.png (no b.* in data.clean_dir)", "noisy/c.png (no c.* in data.clean_dir)",
                 "clean/d.png (no d.* in data.noisy_dir)"):  # fmt: skip
        assert line in str(lonely.value)  # every bad file at once, not only the first


def test_two_files_with_one_name_are_an_error_naming_both(tmp_path: Path) -> None:
    """x.png and x.jpg in one folder: either could be the partner, so neither is dropped silently."""
    for name in ("a", "b"):
        write_image(tmp_path / "noisy" / f"{name}.png", np.zeros((8, 8, 3), np.float32))
        write_image(tmp_path / "clean" / f"{name}.png", np.zeros((8, 8, 3), np.float32))
    write_image(tmp_path / "noisy" / "a.jpg", np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r"data\.noisy_dir=.*1 name\(s\) appear with two extensions") as clash:
        match_by_name(tmp_path / "noisy", tmp_path / "clean")
    assert f"{tmp_path / 'noisy' / 'a.jpg'} and {tmp_path / 'noisy' / 'a.png'}" in str(clash.value)


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "sidd_samples").is_dir(), reason="needs ../shared/data")
def test_paired_on_real_sidd_samples(tmp_path: Path) -> None:
    samples = SHARED_DATA / "sidd_samples"
    layout = FolderPairs(str(samples / "noisy"), str(samples / "clean"), test_fraction=1.0)
    dm = PairedDataModule({"paired": layout})
    dm.setup("test")
    dataset = dm.dataset("test")
    assert len(dataset) == 12
    direct = []
    for pair in layout.splits()["test"]:
        n = read_raw(pair.noisy).astype(np.float64) / 255
        c = read_raw(pair.clean[0]).astype(np.float64) / 255
        direct.append(10 * math.log10(1 / np.mean((n - c) ** 2)))
    assert min(direct) > 16.0 and max(direct) < 30.5  # the README's 16.4 to 30.2 dB
    ckpt = identity_dncnn(tmp_path / "identity.pt")
    results = evaluate(
        compose_cfg(
            "evaluate",
            [
                "data=paired",
                f"data.noisy_dir={samples / 'noisy'}",
                f"data.clean_dir={samples / 'clean'}",
                "data.datasets.paired.test_fraction=1.0",
                "model=dncnn",
                f"ckpt_path={ckpt}",
            ],
            tmp_path / "eval",
        )
    )
    assert results["images"] == 12
    assert results["test/psnr_noisy"] == pytest.approx(float(np.mean(direct)), abs=1e-4)
    shutil.rmtree(tmp_path / "eval")


def test_without_the_official_blocks_the_test_holds_out_scenes_of_its_own(tmp_path: Path) -> None:
    """The report's case: without the .mat blocks SIDD tested on the validation scenes, so a run's test score was
    its best validation score exactly. Now train, val and test are disjoint scene instances."""
    layout = SIDD(str(make_sidd(tmp_path / "sidd")), val_fraction=0.2, test_fraction=0.2)
    groups = {split: {pair.group for pair in pairs} for split, pairs in layout.splits().items()}
    assert all(groups.values()) and not layout.shares_test_with_validation()
    assert not groups["train"] & groups["val"] and not groups["train"] & groups["test"]
    assert not groups["val"] & groups["test"]
    explicit = SIDD(str(make_sidd(tmp_path / "sidd")), val_instances=["0001"], test_fraction=0.2).splits()
    assert {p.group for p in explicit["val"]} == {"0001"} and "0001" not in {p.group for p in explicit["test"]}


def test_a_test_on_the_validation_images_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """SIDD's official validation blocks are its test too; test_split=val scores the validation pairs: both are
    named (results.json's test_is_validation, the results table's title)."""
    from denoise.tasks.results import print_test_table

    root = make_sidd(tmp_path / "sidd")
    assert not PairedDataModule({"sidd": SIDD(str(root))}).test_is_validation()
    assert PairedDataModule({"sidd": SIDD(str(root))}, test_split="val").test_is_validation()
    with pytest.raises(ValueError, match=r"data.test_split='validation': expected test \(each dataset's own\) or val"):
        PairedDataModule({"sidd": SIDD(str(root))}, test_split="validation")
    noisy, clean = sidd_blocks(images=1, blocks=1)
    write_mat_v5(root / "ValidationNoisyBlocksSrgb.mat", "ValidationNoisyBlocksSrgb", noisy)
    write_mat_v5(root / "ValidationGtBlocksSrgb.mat", "ValidationGtBlocksSrgb", clean)
    assert PairedDataModule({"sidd": SIDD(str(root))}).test_is_validation()
    scores = {"test/psnr": 30.0, "test/ssim": 0.9, "test/psnr_noisy": 20.0, "test/ssim_noisy": 0.5}
    print_test_table({**scores, "test_is_validation": True}, "NAFNet", tmp_path)
    assert "the test images are the validation's: not an independent test" in capsys.readouterr().out
