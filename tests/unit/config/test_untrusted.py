"""Untrusted files cannot act: a checkpoint's specs build only what the closed registry names, with plain literal
arguments; a checkpoint's network is sized on the meta device before anything is allocated; random or cut-off
bytes are called unreadable (not "pickled objects"); and every other file the suite reads is refused with its
name when it is hostile (decompression bombs, truncated images, foreign ONNX files, broken zoo indexes)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from denoise.checkpoint import CheckpointError, load_network, safe_load
from denoise.config.specs import REGISTRY, SpecError, build
from denoise.training.module import DenoiseModule
from tests.fixtures.small import lightning_checkpoint, tiny_images

NET = {"_target_": "denoise.models.rednet.REDNet", "depth": 10, "channels": 8, "in_channels": 3}


def crafted(path: Path, **hparams: object) -> Path:
    """A checkpoint that loads with weights_only=True (plain data only) whose hyper_parameters say ``hparams``."""
    lightning_checkpoint(path, NET)
    ckpt = torch.load(path, weights_only=True)
    ckpt["hyper_parameters"].update(hparams)
    torch.save(ckpt, path)
    return path


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "precious.txt"
    path.write_text("a user's file\n")
    return path


def hydra_open(victim: Path) -> dict:
    """The attack of the report: a function of this package that hands a config on to Hydra's instantiate,
    whose config opens (and so truncates) a file of the user's."""
    return {
        "_target_": "denoise.tasks.compose.instantiate",
        "config": {"_target_": "builtins.open", "file": str(victim), "mode": "w"},
    }


def test_a_checkpoint_cannot_reach_hydra_instantiate(tmp_path: Path, victim: Path) -> None:
    ckpt = crafted(tmp_path / "evil.ckpt", net=hydra_open(victim))
    with pytest.raises(CheckpointError, match=r"'denoise\.tasks\.compose\.instantiate' is not allowed"):
        load_network(ckpt)
    assert victim.read_text() == "a user's file\n"


def test_denoise_predict_and_export_refuse_the_crafted_checkpoint(tmp_path: Path, victim: Path, capsys) -> None:
    from denoise.cli import export, predict

    ckpt = crafted(tmp_path / "evil.ckpt", net=hydra_open(victim))
    images = tiny_images(tmp_path / "in", count=1)
    assert predict.main([str(ckpt), str(images), "-o", str(tmp_path / "out")]) == 2
    assert export.main([str(ckpt), "-o", str(tmp_path / "m.onnx")]) == 2
    assert "is not allowed" in capsys.readouterr().err
    assert victim.read_text() == "a user's file\n" and not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({**NET, "channels": {"_target_": "builtins.open", "file": "x"}}, r"nested specs and private keys"),
        ({**NET, "_args_": ["x"]}, r"private keys are refused"),
        ({**NET, "channels": Path("/etc/passwd")}, r"is a PosixPath; expected a plain value"),
        ({**NET, "channels": float("nan")}, r"nan is not a usable value"),
        ({"_target_": "torch.optim.Adam", "lr": 1e-3}, r"a network must be one of"),
        ({"_target_": "denoise.models.rednet.torch", "x": 1}, r"is not allowed"),
        ({**NET, "_partial_": "yes"}, r"_partial_='yes': expected true or false"),
    ],
)
def test_specs_build_only_registered_targets_with_literal_arguments(spec: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        build(spec, what="model.net", kind="network")


def test_the_registry_is_closed_and_every_entry_builds() -> None:
    """Each registered target imports (the list is not stale), and every kind's list is the only way in."""
    from denoise.config.specs import import_target

    for kind, targets in REGISTRY.items():
        for target in targets:
            assert callable(import_target(target, kind=kind))
    every = [target for targets in REGISTRY.values() for target in targets]
    assert not [t for t in every if t.startswith(("denoise.tasks", "denoise.cli", "hydra", "builtins", "os."))]


@pytest.mark.parametrize(
    ("key", "spec"),
    [
        ("optimizer", {"_target_": "denoise.tasks.compose.instantiate", "config": {"_target_": "os.getcwd"}}),
        ("scheduler", {"_target_": "torch.optim.Adam", "lr": 1.0}),
        ("objective", {"_target_": "denoise.models.rednet.REDNet"}),
    ],
)
def test_the_module_refuses_every_hostile_spec_when_it_arrives(key: str, spec: dict) -> None:
    """DenoiseModule(**hyper_parameters) (load_from_checkpoint) builds the optimizer and schedule later: their
    specs are checked at construction, like the network's and the objective's."""
    with pytest.raises(SpecError, match=r"is not allowed"):
        DenoiseModule(net=NET, **{key: spec})


def test_the_module_refuses_objects_in_plain_settings() -> None:
    with pytest.raises(SpecError, match=r"inference\.tile is a PosixPath"):
        DenoiseModule(net=NET, inference={"tile": Path("/x")})


def test_a_huge_network_spec_is_refused_before_allocation(tmp_path: Path) -> None:
    """channels=60000 would ask for terabytes: the spec is sized on the meta device, against the network budget,
    before anything is allocated."""
    ckpt = crafted(tmp_path / "huge.ckpt", net={**NET, "channels": 60_000})
    with pytest.raises(CheckpointError, match=r"REDNet\) asks for more than 1,000,000,000 parameters: the limit"):
        load_network(ckpt)


def test_a_spec_within_the_budget_that_does_not_fit_its_weights_is_refused(tmp_path: Path) -> None:
    """A spec whose network is buildable but not the one the weights are of: compared shape by shape on the meta
    device, before the real network is allocated."""
    ckpt = crafted(tmp_path / "other.ckpt", net={**NET, "channels": 2 * NET["channels"]})
    with pytest.raises(CheckpointError, match=r"does not fit denoise\.models\.rednet\.REDNet: shapes differ"):
        load_network(ckpt)


@pytest.mark.parametrize("kind", ["random", "truncated", "empty"])
def test_bytes_that_are_no_checkpoint_are_called_unreadable(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.ckpt"
    if kind == "random":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    elif kind == "truncated":
        whole = lightning_checkpoint(tmp_path / "whole.ckpt", NET).read_bytes()
        path.write_bytes(whole[: len(whole) // 2])
    else:
        path.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"is not a readable PyTorch checkpoint: it is truncated, corrupt") as err:
        safe_load(path)
    assert "pickled Python objects" not in str(err.value)


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A small PNG whose header claims ``width x height`` (a decompression bomb's header; the body is a stub)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from denoise.data.io import ImageReadError, read_raw

    bomb = png_header_only(tmp_path / "bomb.png", 32000, 32000)
    with pytest.raises(ImageReadError, match=r"bomb\.png is 32000x32000 = 1024 megapixels, above the limit of 150"):
        read_raw(bomb)
    monkeypatch.setenv("DENOISE_MAX_PIXELS", "1000")
    with pytest.raises(ImageReadError, match=r"above the limit of 0\.001 megapixels"):
        read_raw(tiny_images(tmp_path / "small", count=1) / "img0.png")
    monkeypatch.setenv("DENOISE_MAX_PIXELS", "lots")
    with pytest.raises(ValueError, match=r"DENOISE_MAX_PIXELS='lots': expected a number of pixels"):
        read_raw(bomb)


def test_predict_refuses_a_bomb_before_any_work(tmp_path: Path, capsys) -> None:
    from denoise.cli import predict

    ckpt = lightning_checkpoint(tmp_path / "m.ckpt", NET)
    (tmp_path / "in").mkdir()
    bomb = png_header_only(tmp_path / "in" / "bomb.png", 32000, 32000)
    assert predict.main([str(ckpt), str(bomb), "-o", str(tmp_path / "out")]) == 2
    assert "bomb.png is 32000x32000" in capsys.readouterr().err
    assert not list((tmp_path / "out").glob("*.png"))


def cut_off(path: Path, keep: float = 0.6) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def test_the_input_check_lists_bombs_and_cut_off_files_with_every_other_problem(tmp_path: Path) -> None:
    """A bomb in the training folder and a PNG and a JPEG cut off after valid headers in the test folder: all
    listed at once, before training (the body is checked, not only the header)."""
    import cv2

    from denoise.data.datamodule_base import InputCheckError
    from denoise.tasks.compose import instantiate
    from tests.helpers import compose_cfg

    train = tiny_images(tmp_path / "train", count=3, size=(64, 64))
    png_header_only(train / "bomb.png", 40000, 30000)
    test = tiny_images(tmp_path / "test", count=2, size=(64, 64))
    cut_off(test / "img0.png")
    image = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(test / "photo.jpg"), image)
    cut_off(test / "photo.jpg")
    cfg = compose_cfg(
        "train", [f"data.train_dirs=[{train}]", f"data.val_dirs=[{test}]", f"data.test_dirs=[{test}]"], tmp_path / "r"
    )
    datamodule = instantiate(cfg.data)
    with pytest.raises(InputCheckError) as err:
        datamodule.check_inputs(["train", "val", "test"])
    text = str(err.value)
    assert "bomb.png is 40000x30000 = 1200 megapixels" in text
    assert "img0.png is truncated or corrupt after its header" in text
    assert "photo.jpg is truncated or corrupt after its header (no end-of-image marker" in text


def test_foreign_and_broken_onnx_files_are_named(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import onnx
    from onnx import TensorProto, helper

    from denoise.inference.export import OnnxNetwork

    random = tmp_path / "random.onnx"
    random.write_bytes(np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match=r"random\.onnx cannot be loaded: it is truncated, corrupt or not an ONNX"):
        OnnxNetwork(random)
    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["out"])],
        "foreign",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 8, 8])],
    )
    foreign = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(foreign))
    with pytest.raises(ValueError, match=r"foreign\.onnx has inputs \['image'\] and outputs \['out'\]; expected"):
        OnnxNetwork(foreign)
