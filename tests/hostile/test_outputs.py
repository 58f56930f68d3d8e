"""Hostile inputs, principle 3: outputs are checked against their inputs. Any network (a checkpoint's, an ONNX
file's) must return its input's size and channels, or it is a named error and nothing is written; photos keep
what a viewer relies on (the EXIF orientation applied, alpha untouched, gray kept gray)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from denoise.cli import predict
from denoise.data.headers import encode_gray_alpha_png
from denoise.data.io import image_size, read_raw, write_image
from denoise.inference import Inference, ModelOutputError, denoise_image
from tests.fixtures.small import lightning_checkpoint

RGB_IDENTITY = {"_target_": "denoise.models.rednet.REDNet", "depth": 10, "channels": 8, "in_channels": 3}


def onnx_file(path: Path, out_channels: int, stride: int = 1) -> Path:
    """A graph with the names denoise-export writes (noisy -> denoised) whose output is not the input's shape: a
    1x1 convolution to ``out_channels`` channels, with ``stride``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.full((out_channels, 3, 1, 1), 1 / 3, np.float32), "weight")
    conv = helper.make_node("Conv", ["noisy", "weight"], ["denoised"], strides=[stride, stride])
    graph = helper.make_graph(
        [conv],
        "wrong",
        [helper.make_tensor_value_info("noisy", TensorProto.FLOAT, ["B", 3, "H", "W"])],
        [helper.make_tensor_value_info("denoised", TensorProto.FLOAT, ["B", out_channels, "h", "w"])],
        [weight],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    return path


@pytest.mark.parametrize(
    ("out_channels", "stride", "got"), [(1, 1, "1 x 1 x 96 x 96"), (3, 2, "1 x 3 x 48 x 48"), (5, 1, "1 x 5 x 96 x 96")]
)
@pytest.mark.parametrize("tile", [0, 64])
def test_an_onnx_graph_of_another_shape_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], out_channels: int, stride: int, got: str, tile: int
) -> None:
    """The report's cases: a 1-channel graph made an RGB photo gray, a stride-2 graph wrote 48x48 for 96x96 (rc 0),
    a 5-channel one was a raw cv2.error."""
    model = onnx_file(tmp_path / "wrong.onnx", out_channels, stride)
    photo = tmp_path / "in" / "photo.png"
    write_image(photo, np.random.default_rng(0).random((96, 96, 3), np.float32))
    assert (
        predict.main([str(model), str(photo), "-o", str(tmp_path / "out"), "--tile", str(tile), "--overlap", "8"]) == 2
    )
    err = capsys.readouterr().err
    shape = got if tile == 0 else got.replace("96 x 96", "64 x 64").replace("48 x 48", "32 x 32")
    assert f"{model} on {photo}: the network returned {shape} for an input of 1 x 3 x" in err
    assert "a denoiser must return its input's channels and size; nothing was written for it" in err
    assert "Traceback" not in err and list((tmp_path / "out").iterdir()) == []


class Halves(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., ::2, ::2]


class Gray(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1, keepdim=True)


@pytest.mark.parametrize("net", [Halves(), Gray()])
@pytest.mark.parametrize("settings", [Inference(tile=0), Inference(tile=32, overlap=8), Inference(ensemble=True)])
def test_every_inference_path_checks_the_output(net: torch.nn.Module, settings: Inference) -> None:
    with pytest.raises(ModelOutputError, match=r"the network returned .* for an input of 2 x 3 x"):
        denoise_image(net, torch.rand(2, 3, 64, 48), settings)


def test_a_network_of_the_right_shape_passes_untouched() -> None:
    x = torch.rand(1, 3, 40, 52)
    assert torch.equal(denoise_image(torch.nn.Identity(), x, Inference(tile=0)), x)


def with_orientation(path: Path, image: np.ndarray, orientation: int) -> Path:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(image).save(path, exif=exif.tobytes())
    return path


@pytest.mark.parametrize("orientation", range(1, 9))
def test_the_exif_orientation_is_applied_as_a_viewer_applies_it(tmp_path: Path, orientation: int) -> None:
    """Every one of the eight orientations, against Pillow's own exif_transpose, on a lossless PNG."""
    stored = np.random.default_rng(orientation).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    path = with_orientation(tmp_path / "photo.png", stored, orientation)
    with Image.open(path) as opened:
        expected = np.asarray(ImageOps.exif_transpose(opened))
    assert np.array_equal(read_raw(path), expected)
    assert image_size(path) == expected.shape[:2]


def test_an_exif_rotated_phone_photo_comes_out_upright(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The report's case: a JPEG with orientation 6 came out turned 90 degrees against its input."""
    rng = np.random.default_rng(3)
    stored = cv2.resize(rng.integers(0, 256, (5, 7, 3), dtype=np.uint8), (56, 40), interpolation=cv2.INTER_CUBIC)
    photo = tmp_path / "in" / "phone.jpg"
    photo.parent.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(photo, quality=95, exif=exif.tobytes())
    ckpt = lightning_checkpoint(tmp_path / "identity.ckpt", RGB_IDENTITY, identity=True)
    assert predict.main([str(ckpt), str(photo), "-o", str(tmp_path / "out")]) == 0
    with Image.open(photo) as opened:
        upright = np.asarray(ImageOps.exif_transpose(opened)).astype(float)
    with Image.open(tmp_path / "out" / "phone.jpg") as written:
        assert written.getexif().get(0x0112, 1) == 1  # upright pixels, no tag that would turn them again
        output = np.asarray(written).astype(float)
    assert output.shape == (56, 40, 3) == upright.shape
    assert np.abs(output - upright).mean() < 4  # the same picture, up to JPEG's re-encoding
    assert np.abs(output - upright[::-1, ::-1]).mean() > 20  # (turned the other way, it would not be)


@pytest.mark.parametrize("depth", [8, 16])
def test_gray_with_alpha_stays_gray_with_alpha(tmp_path: Path, depth: int) -> None:
    """The report's case: a gray PNG with alpha came back RGBA with a colour cast. Read as two channels, denoised
    as gray (a colour network sees three equal channels), the alpha copied untouched, written as gray-alpha."""
    rng = np.random.default_rng(depth)
    top = 255 if depth == 8 else 65535
    dtype = np.uint8 if depth == 8 else np.uint16
    gray = cv2.resize(rng.integers(0, top, (6, 8), dtype=dtype), (64, 48), interpolation=cv2.INTER_LINEAR)
    alpha = rng.integers(0, top + 1, (48, 64), dtype=dtype)
    stored = np.stack([gray, alpha], axis=2)
    photo = tmp_path / "in" / "icon.png"
    photo.parent.mkdir()
    photo.write_bytes(encode_gray_alpha_png(stored))
    assert np.array_equal(read_raw(photo), stored)  # two channels, exactly as stored
    ckpt = lightning_checkpoint(tmp_path / "identity.ckpt", RGB_IDENTITY, identity=True)
    assert predict.main([str(ckpt), str(photo), "-o", str(tmp_path / "out")]) == 0
    output = read_raw(tmp_path / "out" / "icon.png")
    assert output.shape == (48, 64, 2) and output.dtype == dtype
    assert np.array_equal(output[..., 1], alpha)  # alpha untouched
    assert np.abs(output[..., 0].astype(int) - gray.astype(int)).max() <= 1  # the identity network's gray
    header = (tmp_path / "out" / "icon.png").read_bytes()[:26]
    assert header[12:16] == b"IHDR" and header[24] == depth and header[25] == 4  # PNG's gray-with-alpha


@pytest.mark.parametrize("depth", [8, 16])
def test_the_gray_alpha_png_encoder_round_trips_byte_exact(tmp_path: Path, depth: int) -> None:
    dtype = np.uint8 if depth == 8 else np.uint16
    image = np.random.default_rng(0).integers(0, np.iinfo(dtype).max + 1, (7, 11, 2), dtype=dtype)
    decoded = cv2.imdecode(np.frombuffer(encode_gray_alpha_png(image), np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.dtype == dtype and np.array_equal(decoded[..., [0, 3]], image)
    assert np.array_equal(decoded[..., 0], decoded[..., 1]) and np.array_equal(decoded[..., 1], decoded[..., 2])
    write_image(tmp_path / "out.tif", image, bit_depth=depth)  # formats without gray-alpha: RGBA, the gray in each
    assert np.array_equal(read_raw(tmp_path / "out.tif"), image[..., [0, 0, 0, 1]])
