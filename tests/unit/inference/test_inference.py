"""Whole-image inference: padding, overlapping tiles blended by weight maps, and the x8 self-ensemble."""

from __future__ import annotations

import pytest
import torch

from denoise.data.transforms import dihedral, inverse_dihedral
from denoise.inference import blend_weights, denoise_image, run_whole, tile_grid
from denoise.models.autoencoder import ConvAutoencoder
from denoise.models.dncnn import DnCNN
from denoise.models.mwcnn import MWCNN
from denoise.models.rednet import REDNet


def _net(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    nets = {
        "rednet": lambda: REDNet(depth=10, channels=8, in_channels=3),  # receptive-field radius 10
        "dncnn": lambda: DnCNN(3),  # radius 17
        "mwcnn": lambda: MWCNN(in_channels=3, levels=2, widths=(8, 8)),  # Haar levels: positions on a grid of 4
        "autoencoder": lambda: ConvAutoencoder(in_channels=3),  # strided, multiple of 4
    }
    return nets[name]().eval()


#: (network, overlap whose margin covers its receptive field)
COVERED = [("rednet", 32), ("dncnn", 48), ("mwcnn", 96), ("autoencoder", 48)]


@pytest.mark.parametrize(("name", "overlap"), COVERED)
@pytest.mark.parametrize("extra", [16, 64])
def test_tiles_equal_the_whole_image_when_the_overlap_covers_the_receptive_field(
    name: str, overlap: int, extra: int
) -> None:
    net = _net(name)
    x = torch.rand(1, 3, 157, 203)  # odd sizes: padding, and a last tile flush with the border
    tile = overlap + extra
    with torch.no_grad():
        whole = run_whole(net, x)
    tiled = denoise_image(net, x, tile=tile, overlap=overlap)
    assert tiled.shape == whole.shape == x.shape
    assert (tiled - whole).abs().max().item() < 1e-5


def test_a_too_small_overlap_shows_seams() -> None:
    """The equivalence above is not automatic: a margin smaller than the receptive field differs."""
    net = _net("mwcnn")
    x = torch.rand(1, 3, 157, 203)
    with torch.no_grad():
        whole = run_whole(net, x)
    assert (denoise_image(net, x, tile=64, overlap=8) - whole).abs().max().item() > 1e-4


@pytest.mark.parametrize(
    ("height", "width", "tile", "overlap", "multiple"), [(157, 203, 64, 32, 1), (96, 480, 64, 16, 8)]
)
def test_weight_maps_cover_every_pixel(height: int, width: int, tile: int, overlap: int, multiple: int) -> None:
    total = torch.zeros(height, width)
    tiles = tile_grid(height, width, tile, overlap, multiple)
    for top, left, h, w in tiles:
        assert top % multiple == 0 and left % multiple == 0  # the network's grid
        assert top + h <= height and left + w <= width
        total[top : top + h, left : left + w] += torch.outer(
            blend_weights(h, top, height, overlap), blend_weights(w, left, width, overlap)
        )
    assert total.min() > 0
    assert len(tiles) == len({(t, left) for t, left, _, _ in tiles})


def test_tile_smaller_than_the_overlap_is_refused() -> None:
    with pytest.raises(ValueError, match=r"tile=32 is too small for overlap=32"):
        tile_grid(100, 100, 32, 32)


def test_progress_reports_every_tile() -> None:
    calls: list[tuple[int, int]] = []
    denoise_image(
        _net("rednet"), torch.rand(1, 3, 100, 130), tile=64, overlap=16, progress=lambda d, t: calls.append((d, t))
    )
    assert calls[-1][0] == calls[-1][1] == len(calls) == len(tile_grid(100, 130, 64, 16))


def test_dihedral_transforms_invert() -> None:
    x = torch.rand(1, 2, 5, 7)
    images = {tuple(dihedral(x, i).flatten().tolist()) for i in range(8)}
    assert len(images) == 8  # all eight are different
    for i in range(8):
        assert torch.equal(inverse_dihedral(dihedral(x, i), i), x)


def test_self_ensemble_is_the_mean_over_the_eight_transforms() -> None:
    net = _net("rednet")
    x = torch.rand(1, 3, 40, 52)
    with torch.no_grad():
        expected = sum(inverse_dihedral(net(dihedral(x, i)), i) for i in range(8)) / 8
        plain = net(x)
    ensembled = denoise_image(net, x, ensemble=True)
    assert (ensembled - expected).abs().max().item() < 1e-6
    assert (ensembled - plain).abs().max().item() > 1e-4  # a random network is not rotation-equivariant
    tiled = denoise_image(net, x, tile=32, overlap=24, ensemble=True)
    assert (tiled - expected).abs().max().item() < 1e-5


def test_whole_image_call_keeps_autograd_and_tiles_do_not() -> None:
    net = _net("rednet")
    x = torch.rand(1, 3, 40, 40)
    assert denoise_image(net, x).requires_grad
    assert not denoise_image(net, x, tile=32, overlap=8).requires_grad


def test_the_validation_loop_uses_the_configured_tiling(monkeypatch: pytest.MonkeyPatch) -> None:
    import denoise.inference.runner as inference  # where denoise_image finds run_tiled
    from denoise.training.module import DenoiseModule

    spec = {"_target_": "denoise.models.rednet.REDNet", "depth": 10, "channels": 8, "in_channels": 3}
    tiled = DenoiseModule(spec, inference={"tile": 48, "overlap": 32})
    whole = DenoiseModule(spec)
    whole.load_state_dict(tiled.state_dict())
    assert tiled.hparams.inference == {"tile": 48, "overlap": 32, "ensemble": False, "precision": "fp32",
                                       "noise_level": "auto", "memory_budget_mb": None, "tile_batch": 1,
                                       "tlc": False, "tlc_size": None}  # fmt: skip
    calls = []
    original = inference.run_tiled
    monkeypatch.setattr(inference, "run_tiled", lambda *a, **k: calls.append(1) or original(*a, **k))
    x = torch.rand(1, 3, 100, 90)
    with torch.no_grad():
        assert (tiled(x) - whole(x)).abs().max().item() < 1e-5
    assert calls == [1]  # only the tiled module went through the tiles


def test_the_inference_settings_are_one_value_with_one_set_of_defaults() -> None:
    """conf/inference/default.yaml holds the same fields and defaults as denoise.inference.Inference (tlc_size
    follows the training crop there); an unknown key or a wrong value is named."""
    import dataclasses

    import yaml

    from denoise.inference import Inference
    from tests.helpers import CONF

    shipped = yaml.safe_load((CONF / "inference" / "default.yaml").read_text())
    assert shipped.pop("tlc_size") == "${data.patch_size}"
    assert shipped == {k: v for k, v in dataclasses.asdict(Inference()).items() if k != "tlc_size"}
    assert Inference.of({"tile": 256}, ensemble=True) == Inference(tile=256, ensemble=True)
    with pytest.raises(ValueError, match=r"inference: unknown key\(s\) \['tiles'\]"):
        Inference.of({"tiles": 256})
    with pytest.raises(ValueError, match=r"inference.tile_batch=0: expected an integer >= 1"):
        Inference(tile_batch=0)
