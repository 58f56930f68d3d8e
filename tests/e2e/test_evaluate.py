"""evaluate.py as the results comparison: every filter and several checkpoints side by side, with every file it
promises (tables, per-image scores, the bar chart, image grids, W&B), the published numbers, and bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from denoise.checkpoint import CheckpointError
from denoise.data.datamodule import PairedDataModule, SyntheticDataModule
from denoise.data.folder_pairs import FolderPairs
from denoise.data.noise import GaussianNoise, PoissonGaussianNoise
from denoise.tasks import evaluate
from tests.fixtures.small import identity_dncnn, lightning_checkpoint, tiny_images
from tests.helpers import SHARED_DATA, compose_cfg, read_results, run_cli

FILTER_LABELS = {"Mean", "Gaussian", "Median", "Adaptive median", "Adaptive Wiener", "Bilateral", "NLM", "BM3D"}
REDNET = {"_target_": "denoise.models.rednet.REDNet", "depth": 10, "channels": 8, "in_channels": 3}


def test_the_comparison_writes_every_table_plot_and_grid(tmp_path: Path) -> None:
    data = tiny_images(tmp_path / "images")
    rednet = lightning_checkpoint(tmp_path / "rednet.ckpt", REDNET)
    identity = identity_dncnn(tmp_path / "identity.pt")
    run = tmp_path / "eval"
    result = run_cli(
        "evaluate.py",
        f"data.test_dirs=[{data}]",
        "filters=all",
        f"ckpt_paths=[{rednet},{identity}]",
        "model=dncnn",  # for the plain state dict; the Lightning checkpoint names its own network
        "grid_images=2",
        "logger=wandb",
        run_dir=run,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    rows = list(csv.DictReader((run / "results.csv").open()))
    assert rows[0]["method"] == "noisy input" and rows[0]["kind"] == "input"
    assert {r["method"] for r in rows[1:]} == FILTER_LABELS | {"REDNet", "DnCNN"}
    assert sorted(r["kind"] for r in rows[1:]) == ["filter"] * 8 + ["model"] * 2
    psnrs = [float(r["psnr"]) for r in rows[1:]]
    assert psnrs == sorted(psnrs, reverse=True)  # best first
    by_method = {r["method"]: r for r in rows}
    noisy_psnr = float(rows[0]["psnr"])
    # the identity network returns its input: exactly the noisy input's score, zero gain
    assert float(by_method["DnCNN"]["psnr"]) == pytest.approx(noisy_psnr, abs=1e-5)
    assert float(by_method["DnCNN"]["psnr_gain"]) == pytest.approx(0.0, abs=1e-5)
    for label in FILTER_LABELS:  # every filter helps (by how much on real photos: test_filters.py)
        assert float(by_method[label]["psnr_gain"]) > 0.1, label
        assert float(by_method[label]["seconds_per_megapixel"]) > 0
        assert int(by_method[label]["images"]) == 3

    per_image = list(csv.DictReader((run / "per_image.csv").open()))
    assert len(per_image) == 3 * 10
    for row in rows[1:]:
        mine = [float(r["psnr"]) for r in per_image if r["method"] == row["method"]]
        assert np.mean(mine) == pytest.approx(float(row["psnr"]), abs=1e-6)

    table = [line for line in (run / "results.md").read_text().splitlines() if line.startswith("| ")]
    assert table[0].startswith("| method | kind | psnr | ssim | psnr_gain |")
    assert table[1].startswith("| noisy input | input |") and len(table) == 12
    assert table[2].startswith(f"| {rows[1]['method']} |")

    results = read_results(run)
    assert results["model_labels"] == {"REDNet": str(rednet), "DnCNN": str(identity)}  # label -> its checkpoint
    assert results["images"] == 3 and set(results["methods"]) == FILTER_LABELS | {"REDNet", "DnCNN"}
    assert results["filter_sigma"] == pytest.approx(25 / 255)  # the data's own level
    assert "test/psnr" not in results  # two networks: no single "the model" score

    chart = cv2.imread(str(run / "psnr_ssim.png"))
    assert chart is not None and chart.shape[1] > 800
    grids = sorted(p.name for p in run.glob("grid_*.png"))
    assert grids == ["grid_img0.png", "grid_img1.png"]
    grid = cv2.imread(str(run / "grid_img0.png"))
    assert grid is not None and grid.shape[0] > 400 and grid.shape[1] > 1000  # 12 panels, 6 a row

    wandb_runs = list((run / "wandb").glob("offline-run-*"))
    assert len(wandb_runs) == 1
    assert list(wandb_runs[0].rglob("*.table.json")), "the results table was not logged"
    assert len(list(wandb_runs[0].rglob("media/images/**/*.png"))) >= 3  # the chart and both grids
    assert "wandb sync" in result.stderr + result.stdout


def test_one_checkpoint_keeps_the_single_model_keys(tmp_path: Path) -> None:
    data = tiny_images(tmp_path / "images")
    identity = identity_dncnn(tmp_path / "identity.pt")
    results = evaluate(
        compose_cfg(
            "evaluate",
            [f"data.test_dirs=[{data}]", "model=dncnn", f"ckpt_path={identity}", "filters=[median]"],
            tmp_path / "eval",
        )
    )
    assert results["method"] == "DnCNN" and results["ckpt_path"] == str(identity)
    assert results["test/psnr"] == pytest.approx(results["test/psnr_noisy"], abs=1e-5)
    assert results["methods"]["Median"]["psnr"] > results["test/psnr"] + 1.0


def test_filters_alone_and_an_estimated_noise_level(tmp_path: Path) -> None:
    data = tiny_images(tmp_path / "images")
    overrides = [f"data.test_dirs=[{data}]", "filters=[nlm,wiener]", "grid_images=0"]
    known = evaluate(compose_cfg("evaluate", [*overrides, "logger=tensorboard"], tmp_path / "a"))
    estimated = evaluate(compose_cfg("evaluate", [*overrides, "filter_sigma=estimate"], tmp_path / "b"))
    fixed = evaluate(compose_cfg("evaluate", [*overrides, "filter_sigma=50"], tmp_path / "c"))
    assert known["filter_sigma"] == pytest.approx(25 / 255) and estimated["filter_sigma"] is None
    assert fixed["filter_sigma"] == pytest.approx(50 / 255)
    assert estimated["methods"]["NLM"]["psnr"] != known["methods"]["NLM"]["psnr"]
    assert not list((tmp_path / "a").glob("grid_*.png"))
    events = EventAccumulator(str(next((tmp_path / "a" / "tensorboard").rglob("events.out.tfevents.*")))).Reload()
    assert "evaluate/psnr_ssim" in events.Tags()["images"]
    assert any("evaluate/results" in tag for tag in events.Tags()["tensors"])  # the table, as text
    assert next(csv.DictReader((tmp_path / "a" / "results.csv").open()))["method"] == "noisy input"


def test_noise_level_the_filters_get_from_the_data(tmp_path: Path) -> None:
    assert SyntheticDataModule(GaussianNoise(sigma=15)).noise_sigma == pytest.approx(15 / 255)
    assert SyntheticDataModule(GaussianNoise(sigma=[0, 55])).noise_sigma is None  # blind: estimate
    assert SyntheticDataModule(PoissonGaussianNoise(a=0.01, sigma=5)).noise_sigma is None
    folder = tiny_images(tmp_path / "x")
    assert PairedDataModule({"paired": FolderPairs(str(folder), str(folder))}).noise_sigma is None


def test_bad_comparison_input_names_the_key(tmp_path: Path) -> None:
    data = tiny_images(tmp_path / "images")
    base = [f"data.test_dirs=[{data}]"]
    with pytest.raises(ValueError, match=r"filters: unknown filter 'wavelet'; expected names from \['mean'"):
        evaluate(compose_cfg("evaluate", [*base, "filters=[median,wavelet]"], tmp_path / "a"))
    with pytest.raises(ValueError, match=r"nothing to evaluate: give ckpt_path=PATH"):
        evaluate(compose_cfg("evaluate", base, tmp_path / "b"))
    with pytest.raises(ValueError, match=r"filter_sigma='loud': expected auto, estimate, or a number"):
        evaluate(compose_cfg("evaluate", [*base, "filters=[median]", "filter_sigma=loud"], tmp_path / "c"))
    with pytest.raises(FileNotFoundError, match=r"ckpt_paths\[1\]=.*missing\.ckpt: no such checkpoint file"):
        identity = identity_dncnn(tmp_path / "identity.pt")
        paths = f"ckpt_paths=[{identity},{tmp_path / 'missing.ckpt'}]"
        evaluate(compose_cfg("evaluate", [*base, "model=dncnn", paths], tmp_path / "d"))
    with pytest.raises(CheckpointError, match=r"ckpt_path=.*identity\.pt does not fit denoise\.models\.rednet\.REDNet"):
        evaluate(compose_cfg("evaluate", [*base, "model=rednet", f"ckpt_path={identity}"], tmp_path / "e"))


@pytest.mark.skipif(not (SHARED_DATA / "set12").is_dir(), reason="needs ../shared/data (the reference data)")
def test_set12_bm3d_and_dncnn_reproduce_the_papers_through_evaluate(tmp_path: Path) -> None:
    """Gray Set12 at sigma 25: BM3D within 0.15 dB of 29.97 and the authors' DnCNN-S weights within 0.05 dB of
    30.44 (the DnCNN paper's table), one evaluate.py run."""
    run = tmp_path / "eval"
    result = run_cli(
        "evaluate.py",
        "model=dncnn",
        f"ckpt_path={SHARED_DATA / 'reference' / 'dncnn_sigma25_gray.pt'}",
        "filters=[bm3d]",
        f"data.test_dirs=[{SHARED_DATA / 'set12'}]",
        "data.grayscale=true",
        "noise=gaussian",
        "noise.sigma=25",
        "grid_images=1",
        run_dir=run,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = read_results(run)
    assert results["images"] == 12
    assert results["methods"]["BM3D"]["psnr"] == pytest.approx(29.97, abs=0.15)
    assert results["methods"]["DnCNN"]["psnr"] == pytest.approx(30.44, abs=0.05)
    assert results["test/psnr"] == results["methods"]["DnCNN"]["psnr"]
    # sigma 25 is 20.17 dB before the noisy input is clipped to [0, 1] for scoring; the fixed seeds give 20.33
    assert results["noisy"]["psnr"] == pytest.approx(20.33, abs=0.05)
    assert json.loads((run / "results.json").read_text())["filters"] == ["bm3d"]
