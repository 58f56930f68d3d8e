"""denoise-eda (python -m denoise.cli.eda): counts, per-pair noise statistics and a fitted Poisson-Gaussian model,
as eda.md with PNG plots and eda.json."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tracemalloc
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from denoise.data.io import ImageReadError, read_image, write_image
from denoise.data.noise_diagnosis import CORRELATED
from denoise.eda import Sample, analyze, iter_samples, run
from tests.helpers import ROOT, SHARED_DATA, compose_cfg


def eda_cli(*overrides: str, run_dir: Path) -> subprocess.CompletedProcess:
    """``python -m denoise.cli.eda overrides...`` from the repo root, its run directory at ``run_dir``."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "denoise.cli.eda", *overrides, f"hydra.run.dir={run_dir}"]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)


#: SIDD scene folders of two noise groups: (phone, ISO) -> Poisson-Gaussian a and b (0-1 scale)
GROUPS = {("S6", 100): (1e-3, 1e-4), ("GP", 800): (4e-3, 6e-4)}
SCENES = {
    "0001_001_S6_00100_00060_3200_L": (0.05, 0.85),
    "0002_002_S6_00100_00030_5500_N": (0.05, 0.85),
    "0003_001_GP_00800_00350_5500_H": (0.15, 0.7),
    "0004_003_GP_00800_01000_4400_N": (0.15, 0.7),
}


def make_poisson_gaussian_sidd(root: Path, size: int = 384) -> Path:
    """SIDD Medium's layout, 16-bit PNGs whose noise is a * Poisson(x / a) + N(0, b) with each group's a, b;
    clean intensities stay over 4 standard deviations of the noise away from 0 and 1 (clipping is rare)."""
    rng = np.random.default_rng(7)
    data = root / "SIDD_Medium_Srgb" / "Data"
    for scene, (low, high) in SCENES.items():
        parts = scene.split("_")
        a, b = GROUPS[(parts[2], int(parts[3]))]
        for capture in ("010", "011"):
            clean = rng.uniform(low, high, (size, size, 3))
            noisy = a * rng.poisson(clean / a) + rng.normal(0.0, math.sqrt(b), clean.shape)
            write_image(data / scene / f"{parts[0]}_GT_SRGB_{capture}.PNG", clean, bit_depth=16)
            write_image(data / scene / f"{parts[0]}_NOISY_SRGB_{capture}.PNG", noisy, bit_depth=16)
    return root / "SIDD_Medium_Srgb"


def _datamodule(overrides: list[str], tmp_path: Path):
    from hydra.utils import instantiate

    return instantiate(compose_cfg("eda", overrides, tmp_path / "compose").data)


def _valid_png(path: Path) -> bool:
    with Image.open(path) as image:
        image.verify()
        return image.format == "PNG"


@pytest.mark.slow
def test_fit_recovers_a_and_b_and_counts_are_exact(tmp_path: Path) -> None:
    root = make_poisson_gaussian_sidd(tmp_path / "sidd")
    out = tmp_path / "run"
    result = eda_cli("data=sidd", f"data.root={root}", run_dir=out)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "eda.json").read_text())

    for (phone, iso), (a, b) in GROUPS.items():
        camera = {"S6": "Samsung Galaxy S6 Edge", "GP": "Google Pixel"}[phone]
        fit = report["groups"][f"{camera} / ISO {iso}"]["fit"]
        assert fit["a"] == pytest.approx(a, rel=0.05) and fit["b"] == pytest.approx(b, rel=0.05), (phone, fit)
    assert report["summary"]["pairs"] == 8
    counts = report["counts"]["sidd"]
    assert counts["pairs"] == 8 and list(report["counts"]) == ["sidd"]
    assert counts["camera"] == {"Google Pixel": 4, "Samsung Galaxy S6 Edge": 4}
    assert counts["iso"] == {"100": 4, "800": 4}
    assert counts["shutter"] == {"30": 2, "60": 2, "350": 2, "1000": 2}
    assert counts["temperature"] == {"3200": 2, "4400": 2, "5500": 4}
    assert Counter(counts["brightness"]) == Counter({"low": 2, "normal": 4, "high": 2})
    assert report["sizes"] == {"384x384": 8}

    markdown = (out / "eda.md").read_text()
    pictures = ["eda_counts.png", "eda_per_pair.png", "eda_noise_model.png", "eda_histograms.png", "eda_samples.png"]
    for picture in pictures:
        assert f"]({picture})" in markdown and _valid_png(out / picture)
    # per pair: the noise std per channel is the model's sqrt(a x + b) averaged over the pair's intensities
    first = next(p for p in report["pairs"] if p["name"].startswith("0001"))
    expected = math.sqrt(1e-3 * 0.45 + 1e-4)
    assert first["noise_std"] == pytest.approx([expected] * 3, rel=0.02)


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "sidd_samples").is_dir(), reason="needs ../shared/data/sidd_samples")
def test_real_sidd_samples_report_with_exact_per_pair_psnr(tmp_path: Path) -> None:
    samples = SHARED_DATA / "sidd_samples"
    out = tmp_path / "run"
    overrides = ["data=paired", f"data.noisy_dir={samples / 'noisy'}", f"data.clean_dir={samples / 'clean'}"]
    result = eda_cli(*overrides, run_dir=out)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "eda.json").read_text())
    assert report["summary"]["pairs"] == 12
    for pair in report["pairs"]:
        name = Path(pair["name"]).name
        noisy = read_image(next((samples / "noisy").glob(f"{Path(name).stem}.*"))).astype(np.float64)
        clean = read_image(next((samples / "clean").glob(f"{Path(name).stem}.*"))).astype(np.float64)
        direct = 10 * math.log10(1.0 / np.mean((noisy - clean) ** 2))
        assert pair["psnr_noisy"] == pytest.approx(direct, abs=1e-6), name
        assert pair["noise_std"] == pytest.approx(list((noisy - clean).reshape(-1, 3).std(axis=0)), abs=1e-6)
    assert 16.0 < min(p["psnr_noisy"] for p in report["pairs"]) < max(p["psnr_noisy"] for p in report["pairs"]) < 31
    assert all(_valid_png(out / name) for name in report["pictures"].values())
    # the blind diagnosis of the noisy photos, checked against the truth the clean images give
    diagnosis = report["noise"]["diagnosis"]
    assert diagnosis["correlated"] and diagnosis["recommended_objectives"][0] == "apbsn"
    assert 0.40 < report["noise"]["residual_correlation"] < 0.55  # SIDD's real noise: 0.47
    assert CORRELATED < diagnosis["correlation"] < report["noise"]["residual_correlation"]
    assert "## Noise diagnosis" in (out / "eda.md").read_text()


def test_a_noisy_folder_gets_the_noise_diagnosis_in_eda_json(tmp_path: Path) -> None:
    """denoise-eda data=noisy_folder: no clean images, so the report is the blind diagnosis: eda.json's
    noise.diagnosis with the correlation, the two verdicts and the recommended objectives, a plot, a table."""
    from bench.noise_diagnosis import blurred
    from tests.unit.data.test_noise_diagnosis import noisy

    folder = tmp_path / "shots"
    for index, image in enumerate(noisy(blurred(6, 1.0)) * 2):
        write_image(folder / f"shot_{index:02d}.png", image)
    out = tmp_path / "run"
    result = eda_cli("data=noisy_folder", f"data.noisy_dir={folder}", run_dir=out)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "eda.json").read_text())
    diagnosis = report["noise"]["diagnosis"]
    assert {"correlation", "correlated", "signal_dependent", "recommended_objectives"} <= set(diagnosis)
    assert diagnosis["correlated"] is True and diagnosis["signal_dependent"] is False
    assert diagnosis["recommended_objectives"] == ["apbsn", "noise2noise"]
    assert report["summary"]["images"] == 10 and len(report["noise"]["per_image"]) == 10
    assert _valid_png(out / report["pictures"]["diagnosis"])
    text = (out / "eda.md").read_text()
    assert "neighbor2neighbor and noise2void will fail" in text and "| shot_09.png |" in text
    assert "EDA of 10 noisy images" in result.stdout + result.stderr


@pytest.mark.slow
def test_synthetic_noise_measured_matches_the_configured_noise(tmp_path: Path) -> None:
    gaussian = run(_datamodule([], tmp_path), tmp_path / "gauss", "synthetic", {"max_pairs": 3}, progress=False)
    assert gaussian["summary"]["pairs"] == 3  # eda.max_pairs
    assert 255 * gaussian["groups"]["synthetic"]["std"] == pytest.approx(25.0, rel=0.01)
    assert gaussian["expected_noise"]["std"] == pytest.approx(25 / 255)
    assert "## Configured against measured noise" in (tmp_path / "gauss" / "eda.md").read_text()

    overrides = ["noise=poisson_gaussian", "noise.a=0.01", "noise.sigma=5"]
    shot = run(_datamodule(overrides, tmp_path), tmp_path / "shot", "synthetic", {"max_pairs": 4}, progress=False)
    fit = shot["groups"]["synthetic"]["fit"]
    assert fit["a"] == pytest.approx(0.01, rel=0.05) and fit["b"] == pytest.approx((5 / 255) ** 2, rel=0.05)


@pytest.mark.slow
def test_memory_stays_bounded_while_streaming() -> None:
    """The peak memory of the analysis does not grow with the number of pairs: 40 pairs of 1024x1024 RGB
    (960 MB as float32) peak no higher than 4 pairs, at two pairs' arrays (the one being analyzed and the next
    one decoded) plus a few chunk buffers."""
    rng = np.random.default_rng(0)
    clean = rng.random((1024, 1024, 3), dtype=np.float32)
    noisy = clean + rng.normal(0, 0.05, clean.shape).astype(np.float32)
    pair_mib = (clean.nbytes + noisy.nbytes) / 2**20

    def peak_mib(count: int) -> float:
        def samples():
            for i in range(count):  # fresh arrays per pair, as a dataset would decode them
                yield Sample(f"{i}", "gen", noisy.copy(), clean.copy(), {"iso": 100})

        tracemalloc.start()
        analysis = analyze(samples(), total=count, progress=False)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert len(analysis.pairs) == count
        return peak / 2**20

    few, many = peak_mib(4), peak_mib(40)
    assert many < 1.1 * few, (few, many)
    assert many < 2 * pair_mib + 24, f"peak {many:.1f} MiB for pairs of {pair_mib:.1f} MiB"


@pytest.mark.slow
def test_bad_input_names_the_path(tmp_path: Path) -> None:
    result = eda_cli("data=sidd", f"data.root={tmp_path / 'nowhere'}", run_dir=tmp_path / "a")
    assert result.returncode != 0
    assert "nowhere" in result.stderr and "Data/<scene>" in result.stderr  # the expected layout is printed

    root = make_poisson_gaussian_sidd(tmp_path / "sidd", size=16)
    broken = next(root.glob("Data/*/*_NOISY_SRGB_010.PNG"))
    broken.write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    datamodule = _datamodule(["data=sidd", f"data.root={root}"], tmp_path)
    with pytest.raises(ImageReadError, match=rf"{broken.name}: it is corrupt"):
        list(iter_samples(datamodule))


@pytest.mark.slow
def test_renoir_and_nind_counts_per_camera_batch_scene_and_iso(tmp_path: Path) -> None:
    """data=real on fixtures: RENOIR per camera and batch, NIND per scene and ISO, one noise group each."""
    import warnings

    from tests.fixtures.real import make_nind, make_renoir, make_sidd

    roots = {
        "sidd": make_sidd(tmp_path / "sidd"),
        "renoir": make_renoir(tmp_path / "renoir"),
        "nind": make_nind(tmp_path / "nind"),
    }
    datamodule = _datamodule(["data=real", *[f"data.{k}_root={v}" for k, v in roots.items()]], tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # RENOIR's S90 fixture batch is 2 px short, cropped with a warning
        report = run(datamodule, tmp_path / "out", "data=real", {"grid_samples": 2}, progress=False)
    counts = report["counts"]
    assert {name: counts[name]["pairs"] for name in counts} == {"sidd": 12, "renoir": 10, "nind": 12}
    # RENOIR: Mi3 and T3i have 2 batches of 2 noisy shots, S90 one batch of 2
    assert counts["renoir"]["batch"] == {"Batch_001": 6, "Batch_002": 4}
    assert counts["renoir"]["camera"] == {"Canon EOS Rebel T3i": 4, "Canon PowerShot S90": 2, "Xiaomi Mi3": 4}
    # NIND: 4 scenes with noisy ISO 3200, 6400 and H1 each (ISO 200 and its duplicate are the clean shots)
    assert counts["nind"]["scene"] == {"Pen-pile": 3, "scene-a": 3, "scene-b": 3, "scene-c": 3}
    assert counts["nind"]["iso"] == {"3200": 4, "6400": 4, "H1": 4}
    assert set(counts["nind"]) == {"pairs", "scene", "iso"}
    assert {"Xiaomi Mi3", "nind / ISO 3200", "nind / ISO H1", "Google Pixel / ISO 800"} <= set(report["groups"])
    assert len(report["pairs"]) == 34 and report["pictures"]["samples"] == "eda_samples.png"
