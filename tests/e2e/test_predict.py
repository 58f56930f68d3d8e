"""``denoise-predict`` (``python -m denoise.cli.predict``): files and folders, 8 and 16 bit, gray/RGB/RGBA, tiles
and the ensemble, real denoising with the DnCNN authors' weights, and every kind of bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

from denoise.checkpoint import CheckpointError
from denoise.data.io import ImageReadError, read_raw, write_image
from denoise.data.synthetic import embedded_files
from denoise.tasks.prediction import predict
from tests.fixtures.small import PickleExploit, identity_dncnn, lightning_checkpoint
from tests.helpers import ROOT, SHARED_DATA

DNCNN = {"_target_": "denoise.models.dncnn.DnCNN", "in_channels": 3}


def run_predict(*args: str | Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "160"}
    cmd = [sys.executable, "-m", "denoise.cli.predict", *map(str, args)]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)


def random_image(shape: tuple[int, ...], dtype: type, seed: int) -> np.ndarray:
    high = np.iinfo(dtype).max
    return np.random.default_rng(seed).integers(0, high + 1, size=shape, dtype=np.int64).astype(dtype)


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, np.ndarray]:
    """Odd sizes, both bit depths, gray/RGB/RGBA, PNG and TIFF: written as files, returned as the exact arrays."""
    arrays = {
        "rgb8.png": random_image((37, 53, 3), np.uint8, 0),
        "gray16.png": random_image((41, 29, 1), np.uint16, 1),
        "rgba8.png": random_image((33, 45, 4), np.uint8, 2),
        "rgb16.tif": random_image((35, 39, 3), np.uint16, 3),
    }
    for name, array in arrays.items():
        write_image(tmp_path / "in" / name, array, bit_depth=8 if array.dtype == np.uint8 else 16)
        assert np.array_equal(read_raw(tmp_path / "in" / name), array)
    return arrays


def test_an_identity_network_round_trips_every_file_byte_exact(tmp_path: Path, inputs: dict) -> None:
    """8/16-bit, gray (through a colour network), RGB, RGBA (alpha copied) at odd sizes, in tiles: every value back."""
    ckpt = identity_dncnn(tmp_path / "identity.pt")
    out = tmp_path / "out"
    result = run_predict(ckpt, tmp_path / "in", "-o", out, "--model", "dncnn", "--tile", "16", "--overlap", "4")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "denoised 4 images" in result.stdout
    for name, array in inputs.items():
        written = read_raw(out / name)
        assert written.dtype == array.dtype and written.shape == array.shape, name
        assert np.array_equal(written, array), name


def test_jpeg_in_jpeg_out(tmp_path: Path) -> None:
    """JPEG is lossy, so the identity network's output is the input re-encoded: same size, nearly the same."""
    photo = read_raw(embedded_files("test")[1])  # chelsea, a real photo
    write_image(tmp_path / "cat.jpg", photo)
    ckpt = identity_dncnn(tmp_path / "identity.pt")
    written = predict(ckpt, [tmp_path / "cat.jpg"], tmp_path / "out", tile=128, model="dncnn")
    assert written == [tmp_path / "out" / "cat.jpg"]
    before, after = read_raw(tmp_path / "cat.jpg"), read_raw(written[0])
    assert after.shape == before.shape and after.dtype == np.uint8
    assert peak_signal_noise_ratio(before, after, data_range=255) > 35


def test_a_gray_network_denoises_each_colour_channel_and_whole_images(tmp_path: Path, inputs: dict) -> None:
    ckpt = identity_dncnn(tmp_path / "gray.pt", channels=1)
    written = predict(ckpt, [tmp_path / "in" / "rgb8.png"], tmp_path / "out", tile=0, model="dncnn", gray=True)
    assert written == [tmp_path / "out" / "rgb8.png"]
    assert np.array_equal(read_raw(written[0]), inputs["rgb8.png"])


def test_a_lightning_checkpoint_needs_no_model_and_ensemble_runs(tmp_path: Path, inputs: dict) -> None:
    ckpt = lightning_checkpoint(tmp_path / "identity.ckpt", DNCNN, identity=True)
    written = predict(ckpt, [tmp_path / "in" / "rgba8.png"], tmp_path / "out", tile=24, overlap=8, ensemble=True)
    assert np.array_equal(read_raw(written[0]), inputs["rgba8.png"])


@pytest.mark.skipif(not (SHARED_DATA / "set12").is_dir(), reason="needs ../shared/data (the reference data)")
def test_the_dncnn_authors_weights_denoise_a_photo_through_the_cli(tmp_path: Path) -> None:
    clean = read_raw(SHARED_DATA / "set12" / "08.png")  # 512x512 gray
    noisy = np.clip(clean / 255 + np.random.default_rng(0).normal(0, 25 / 255, clean.shape), 0, 1)
    write_image(tmp_path / "noisy.png", noisy.astype(np.float32))
    weights = SHARED_DATA / "reference" / "dncnn_sigma25_gray.pt"
    outputs = {}
    for name, options in {"whole": ["--tile", "0"], "tiled": ["--tile", "200", "--overlap", "48"]}.items():
        out = tmp_path / name
        result = run_predict(weights, tmp_path / "noisy.png", "-o", out, "--model", "dncnn", "--gray", *options)
        assert result.returncode == 0, result.stderr[-3000:]
        outputs[name] = read_raw(out / "noisy.png")
    before = peak_signal_noise_ratio(clean, read_raw(tmp_path / "noisy.png"), data_range=255)
    after = peak_signal_noise_ratio(clean, outputs["whole"], data_range=255)
    assert after - before > 10.0  # 20.2 -> 31.x dB
    # DnCNN's receptive-field radius (17) is inside the tiles' margin (18): the same values up to float rounding,
    # which can move a value that sits on a rounding boundary by one 8-bit step
    difference = np.abs(outputs["tiled"].astype(int) - outputs["whole"].astype(int))
    assert difference.max() <= 1 and np.mean(difference > 0) < 1e-4


def test_the_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "denoise-predict"
    assert script.is_file(), "pip install -e . installs denoise-predict beside python"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0 and "--tile" in result.stdout and "--ensemble" in result.stdout


def test_bad_input_gets_a_clear_error_and_exit_code(tmp_path: Path, inputs: dict) -> None:
    ckpt = identity_dncnn(tmp_path / "identity.pt")
    image = tmp_path / "in" / "rgb8.png"
    missing = run_predict(tmp_path / "nope.ckpt", image, "-o", tmp_path / "out")
    assert (
        missing.returncode == 2 and "CKPT=" in missing.stderr and "nope.ckpt: no such checkpoint file" in missing.stderr
    )
    other = run_predict(ckpt, image, "-o", tmp_path / "out", "--model", "rednet")
    assert other.returncode == 2 and "does not fit denoise.models.rednet.REDNet" in other.stderr
    assert "Traceback" not in other.stderr
    (tmp_path / "notes.txt").write_text("not an image")
    text = run_predict(ckpt, tmp_path / "notes.txt", "-o", tmp_path / "out", "--model", "dncnn")
    assert text.returncode == 2 and "notes.txt is not an image file" in text.stderr
    (tmp_path / "fake.png").write_bytes(b"definitely not a png")
    with pytest.raises(ImageReadError, match=r"fake\.png is not a readable image"):
        predict(ckpt, [tmp_path / "fake.png"], tmp_path / "out", model="dncnn")
    with pytest.raises(FileNotFoundError, match=r"input .*ghost\.png does not exist"):
        predict(ckpt, [tmp_path / "ghost.png"], tmp_path / "out", model="dncnn")
    (tmp_path / "twin").mkdir()
    write_image(tmp_path / "twin" / "rgb8.png", inputs["rgb8.png"])
    with pytest.raises(ValueError, match=r"would both be written to .*rgb8\.png"):
        predict(ckpt, [image, tmp_path / "twin"], tmp_path / "out", model="dncnn")
    with pytest.raises(ValueError, match=r"would overwrite its input"):
        predict(ckpt, [image], tmp_path / "in", model="dncnn")
    with pytest.raises(ValueError, match=r"model='unet' is unknown; expected one of \['autoencoder'"):
        predict(ckpt, [image], tmp_path / "out", model="unet")
    assert not (tmp_path / "out").exists()  # nothing was written by any failed call


def test_a_checkpoint_with_pickled_code_is_refused_and_nothing_runs(tmp_path: Path, inputs: dict) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"net": PickleExploit(marker)}}, evil)
    result = run_predict(evil, tmp_path / "in", "-o", tmp_path / "out")
    assert result.returncode == 2
    assert "evil.ckpt was refused: it holds pickled Python objects" in result.stderr
    with pytest.raises(CheckpointError, match="refused"):
        predict(evil, [tmp_path / "in"], tmp_path / "out")
    assert not marker.exists() and not (tmp_path / "out").exists()
