"""RENOIR, NIND and data=real (all three together) on fixtures in the published layouts."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from denoise.data.datamodule import PairedDataModule
from denoise.data.io import read_raw
from denoise.data.nind import NIND, iso_order
from denoise.data.nind import scan as scan_nind
from denoise.data.pairs import load_pair
from denoise.data.renoir import RENOIR
from denoise.data.renoir import scan as scan_renoir
from denoise.data.sidd import SIDD
from denoise.tasks import evaluate, train
from tests.fixtures.real import NIND_TEST_SCENE, SIDD_SCENES, make_nind, make_renoir, make_sidd
from tests.helpers import TINY_REAL, compose_cfg, read_results


def test_renoir_releases_nested_and_flat(tmp_path: Path) -> None:
    root = make_renoir(tmp_path)
    pairs = scan_renoir(root)
    assert len(pairs) == 5 * 2  # 5 batches, 2 noisy images each; notes.txt and thumbnail.jpg ignored
    assert {p.group for p in pairs} == {
        "Mi3/Batch_001",
        "Mi3/Batch_002",
        "T3i/Batch_001",
        "T3i/Batch_002",
        "S90/Batch_001",
    }
    assert all(p.noisy.name.endswith("Noisy.bmp") and len(p.clean) == 2 for p in pairs)
    assert len(scan_renoir(root / "T3i_Aligned")) == 4  # one release folder as the root
    assert [p.clean[0].name for p in scan_renoir(root, clean="reference")][:1] == ["IMG_0001Reference.bmp"]


def test_renoir_clean_is_the_mean_and_small_size_differences_are_cropped(tmp_path: Path) -> None:
    pairs = scan_renoir(make_renoir(tmp_path))
    mi3 = next(p for p in pairs if p.group == "Mi3/Batch_001")
    noisy, clean = load_pair(mi3, 3)
    reference = read_raw(mi3.clean[0]).astype(np.float32) / 255
    full = read_raw(mi3.clean[1]).astype(np.float32) / 255
    assert np.allclose(clean, (reference + full) / 2, atol=1e-6)
    s90 = next(p for p in pairs if p.group == "S90/Batch_001" and p.noisy.name == "IMG_0003Noisy.bmp")
    with pytest.warns(UserWarning, match=r"sizes differ .* cropping to 62x80"):
        noisy, clean = load_pair(s90, 3)
    assert noisy.shape == clean.shape == (62, 80, 3)


def test_renoir_bad_batches(tmp_path: Path) -> None:
    root = make_renoir(tmp_path)
    (root / "Mi3_Aligned" / "Batch_002" / "IMG_0001Reference.bmp").unlink()
    with pytest.raises(FileNotFoundError, match=r"Batch_002 needs exactly one \*Reference.bmp, found 0"):
        scan_renoir(root)
    with pytest.raises(FileNotFoundError, match=r"(?s)holds no <camera>_Aligned/Batch_NNN.*published"):
        scan_renoir(tmp_path / "Mi3_Aligned" / "Batch_001")
    with pytest.raises(ValueError, match=r"data.datasets.renoir.clean='median'"):
        scan_renoir(root, clean="median")


def test_nind_clean_is_the_lowest_numeric_iso(tmp_path: Path) -> None:
    root = make_nind(tmp_path)
    pairs = scan_nind(root)
    scene_a = [p for p in pairs if p.group == "scene-a"]
    assert sorted(p.meta["iso"] for p in scene_a) == ["3200", "6400", "H1"]  # 200-2 is an alternate, not noisy
    assert all(p.clean[0].name == "NIND_scene-a_ISO200.png" for p in scene_a)
    assert sorted(["H2", "200", "6400", "H1"], key=iso_order) == ["200", "6400", "H1", "H2"]
    noisy, clean = load_pair(next(p for p in scene_a if p.meta["iso"] == "3200"), 3)  # 8-bit JPEG vs 16-bit PNG
    assert np.allclose(clean, read_raw(root / "scene-a" / "NIND_scene-a_ISO200.png")[..., ::1] / 65535, atol=1e-6)
    assert noisy.dtype == clean.dtype == np.float32 and noisy.min() >= 0 and noisy.max() <= 1


def test_nind_splits_use_the_authors_test_scenes(tmp_path: Path) -> None:
    splits = NIND(str(make_nind(tmp_path)), val_fraction=0.34).splits()
    assert {p.group for p in splits["test"]} == {NIND_TEST_SCENE}
    assert len({p.group for p in splits["val"]}) == 1
    assert not {p.group for p in splits["train"]} & {p.group for p in splits["val"] + splits["test"]}


def test_nind_bad_input(tmp_path: Path) -> None:
    root = make_nind(tmp_path)
    (root / "scene-b" / "NIND_scene-x_ISO800.jpg").write_bytes(
        (root / "scene-b" / "NIND_scene-b_ISO3200.jpg").read_bytes()
    )
    with pytest.raises(
        ValueError, match=r"NIND_scene-x_ISO800.jpg: the file names scene 'scene-x' but sits in 'scene-b'"
    ):
        scan_nind(root)
    with pytest.raises(FileNotFoundError, match=r"(?s)no such folder.*NIND_<scene>_ISO<token>"):
        scan_nind(tmp_path / "missing")


def test_real_weights_choose_the_dataset_of_each_sample(tmp_path: Path) -> None:
    layouts = {
        "sidd": SIDD(str(make_sidd(tmp_path / "sidd")), val_fraction=0.2),
        "renoir": RENOIR(str(make_renoir(tmp_path / "renoir"))),
        "nind": NIND(str(make_nind(tmp_path / "nind"))),
    }
    dm = PairedDataModule(layouts, weights={"sidd": 3.0, "renoir": 1.0, "nind": 0.0}, patch_size=32)
    dataset = dm.build_split("train")
    share = {}
    for pair, weight in zip(dataset.pairs, dataset.weights.tolist(), strict=True):
        share[pair.dataset] = share.get(pair.dataset, 0.0) + weight
    total = sum(share.values())
    assert share["sidd"] / total == pytest.approx(0.75) and share["nind"] == 0.0
    with pytest.raises(ValueError, match=r"data.weights names \['dnd'\], which are not in data.datasets"):
        PairedDataModule(layouts, weights={"dnd": 1.0})


@pytest.mark.slow
def test_fit_and_test_on_each_dataset_and_all_together(tmp_path: Path) -> None:
    roots = {
        "sidd": make_sidd(tmp_path / "sidd", scenes=SIDD_SCENES[:4]),
        "renoir": make_renoir(tmp_path / "renoir"),
        "nind": make_nind(tmp_path / "nind"),
    }
    tiny = [*TINY_REAL, "data.datasets.sidd.val_fraction=0.25"]
    sizes = {}
    for name, root in roots.items():
        overrides = [f"data={name}", f"data.root={root}", *[o for o in tiny if "sidd" not in o or name == "sidd"]]
        run = tmp_path / f"run_{name}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # RENOIR's cropped batch
            train(compose_cfg("train", overrides, run))
        results = read_results(run)
        assert np.isfinite(results["test/psnr"]) and results["global_step"] == 2
        sizes[name] = results
    paired = [
        "data=paired",
        f"data.noisy_dir={tmp_path / 'pairs' / 'noisy'}",
        f"data.clean_dir={tmp_path / 'pairs' / 'clean'}",
    ]
    for i, (scene, capture) in enumerate([(0, "010"), (0, "011"), (1, "010"), (1, "011"), (2, "010")]):
        folder = roots["sidd"] / "Data" / SIDD_SCENES[scene]
        instance = SIDD_SCENES[scene][:4]
        for kind, sub in (("NOISY", "noisy"), ("GT", "clean")):
            target = tmp_path / "pairs" / sub / f"{i}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((folder / f"{instance}_{kind}_SRGB_{capture}.PNG").read_bytes())
    run = tmp_path / "run_paired"
    train(
        compose_cfg(
            "train", [*paired, *[o for o in tiny if "sidd" not in o], "data.datasets.paired.test_fraction=0.4"], run
        )
    )
    assert np.isfinite(read_results(run)["test/psnr"]) and read_results(run)["global_step"] == 2

    overrides = ["data=real", *[f"data.{k}_root={v}" for k, v in roots.items()], *tiny]
    run = tmp_path / "run_real"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(compose_cfg("train", overrides, run))
    together = read_results(run)
    for name in roots:  # per-dataset metrics of the mixed run score the same noisy inputs as the single runs
        assert together[f"test/{name}/psnr_noisy"] == pytest.approx(sizes[name]["test/psnr_noisy"], abs=1e-4)

    # evaluate.py on the same mixture: each dataset's own scores, the same as training's test, and grids per dataset
    data_overrides = [o for o in overrides if o.startswith("data")]
    run = tmp_path / "eval_real"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = evaluate(
            compose_cfg("evaluate", [*data_overrides, f"ckpt_path={together['ckpt_path']}", "filters=[median]"], run)
        )
    assert set(results["datasets"]) == set(roots)
    for name in roots:
        assert results[f"test/{name}/psnr"] == pytest.approx(together[f"test/{name}/psnr"], abs=1e-4)
        assert results["datasets"][name]["Median"]["psnr_noisy"] == pytest.approx(
            together[f"test/{name}/psnr_noisy"], abs=1e-4
        )
    grids = sorted(p.name for p in run.glob("grid_*.png"))
    assert len(grids) == 3 and all(g.split("_")[1] in roots for g in grids), grids
