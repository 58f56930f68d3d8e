"""denoise-export: every architecture as ONNX with dynamic batch, height and width, equal to PyTorch within 1e-4
on odd sizes under onnxruntime, and denoise-predict running the exported file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from denoise.cli.export import main as export_main
from denoise.cli.predict import main as predict_main
from denoise.config.specs import build
from denoise.data.io import read_raw
from denoise.inference.export import OnnxNetwork, export_onnx
from denoise.tasks import model_specs
from tests.fixtures.small import lightning_checkpoint, tiny_images
from tests.helpers import CONF

SPECS = model_specs(CONF, 3)
#: every architecture, in the configuration the CPU tests train (the papers' big ones export the same code)
EXPORTED = ["autoencoder", "dncnn", "drunet_small", "ffdnet", "mwcnn", "nafnet_small", "pridnet", "rednet_small",
            "restormer_small", "swinir_small"]  # fmt: skip


#: the networks export refuses, with its reason
NOT_EXPORTED = ["bsn_small"]


def test_every_architecture_is_exported() -> None:
    networks = {SPECS[name]["_target_"] for name in SPECS}
    assert networks == {SPECS[name]["_target_"] for name in EXPORTED + NOT_EXPORTED}


def test_apbsn_export_is_refused_with_its_reason(tmp_path: Path) -> None:
    net = build(SPECS["bsn_small"])
    with pytest.raises(ValueError, match=r"APBSN cannot be exported to ONNX: its inference draws R3's random masks"):
        export_onnx(net, tmp_path / "bsn.onnx", 3)
    assert not (tmp_path / "bsn.onnx").exists()


@pytest.mark.slow  # an export takes 2-35 s here
@pytest.mark.parametrize("name", EXPORTED)
def test_export_matches_pytorch_on_odd_sizes(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    spec = dict(SPECS[name])
    if name == "pridnet":
        spec["width"] = 0.25  # the same layers, a quarter of the channels (74 M parameters take a minute)
    net = build(spec).eval()
    written = export_onnx(net, tmp_path / f"{name}.onnx", 3)
    assert written["max_abs_difference"] <= 1e-4
    runner = OnnxNetwork(tmp_path / f"{name}.onnx")
    x = torch.rand(3, 3, 29, 70)  # another batch and odd size than the export and its check
    inputs = (x, torch.full((3, 1, 29, 70), 30 / 255)) if runner.takes_noise_level else (x,)
    with torch.no_grad():
        assert float((runner(*inputs) - net(*inputs)).abs().max()) <= 1e-4


def test_denoise_export_and_predict_with_the_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ckpt = lightning_checkpoint(tmp_path / "model.ckpt", {"_target_": "denoise.models.rednet.REDNet", "depth": 10,
                                                          "channels": 8, "in_channels": 3})  # fmt: skip
    assert export_main([str(ckpt), "-o", str(tmp_path / "model.onnx")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["network"] == "REDNet" and report["inputs"] == ["noisy"] and report["max_abs_difference"] < 1e-4
    images = tiny_images(tmp_path / "in", count=2, size=(37, 45))
    assert predict_main([str(ckpt), str(images), "-o", str(tmp_path / "torch"), "--tile", "0"]) == 0
    assert predict_main([str(tmp_path / "model.onnx"), str(images), "-o", str(tmp_path / "onnx"), "--tile", "0"]) == 0
    for name in ("img0.png", "img1.png"):
        torch_out = read_raw(tmp_path / "torch" / name).astype(int)
        onnx_out = read_raw(tmp_path / "onnx" / name).astype(int)
        assert np.abs(torch_out - onnx_out).max() <= 1  # 8-bit rounding of outputs equal within 1e-4
    assert export_main([str(tmp_path / "missing.ckpt"), "-o", str(tmp_path / "x.onnx")]) == 2
    assert "missing.ckpt" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()
