"""Inference that does not run out of memory: an out-of-memory error retried in halving tiles, a CPU memory
budget that picks the tile before running, and tiles that leave the whole image where it is."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from denoise.inference import budget_tile, bytes_per_pixel, denoise_image, next_tile, run_tiled


class SmallMemory(nn.Module):
    """A 3x3 smoothing network that 'runs out of memory' above ``limit`` pixels per input, like a GPU would."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.limit, self.seen = limit, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(x.shape[-2:]))
        if x.shape[-2] * x.shape[-1] > self.limit:
            raise torch.OutOfMemoryError(f"CUDA out of memory (fake): {tuple(x.shape)}")
        return self.conv(x)


def test_next_tile_halves_from_the_largest_power_of_two() -> None:
    image = torch.zeros(1, 3, 300, 500)
    assert next_tile(image, 0, 32) == 256  # whole image -> the largest power of two below 500
    assert next_tile(image, 256, 32) == 128
    assert next_tile(image, 128, 32) == 64
    assert next_tile(image, 64, 32) is None  # not below MIN_TILE
    assert next_tile(image, 128, 80) is None  # a tile must hold the overlap and more


def test_out_of_memory_is_retried_in_halving_tiles(caplog: pytest.LogCaptureFixture) -> None:
    torch.manual_seed(0)
    net = SmallMemory(limit=130 * 130)
    image = torch.rand(1, 3, 300, 500)
    with caplog.at_level(logging.WARNING, logger="denoise.inference"):
        out = denoise_image(net, image, tile=0, overlap=16)
    assert net.seen[0] == (300, 500)  # the whole image first
    assert net.seen[1] == (256, 256)  # then a 256 tile (too big again)
    assert max(h * w for h, w in net.seen[2:]) <= 128 * 128  # then 128 tiles, all of them
    messages = [r.getMessage() for r in caplog.records]
    assert any("Out of memory on the whole image (300x500); retrying in 256x256 tiles" in m for m in messages)
    assert any("Out of memory in 256x256 tiles (300x500); retrying in 128x128 tiles" in m for m in messages)
    net.limit = 10**9
    with torch.no_grad():
        assert torch.allclose(out, run_tiled(net, image, 128, 16), atol=1e-6)  # exactly the 128-tile result
    with pytest.raises(torch.OutOfMemoryError, match=r"tiles smaller than 64 pixels .* are not tried"):
        denoise_image(SmallMemory(limit=32 * 32), image, tile=0, overlap=16)


def test_a_cpu_memory_budget_tiles_before_running(caplog: pytest.LogCaptureFixture) -> None:
    torch.manual_seed(0)
    net = SmallMemory(limit=10**9)
    image = torch.rand(1, 3, 300, 500)
    per_pixel = bytes_per_pixel(net, 3)
    assert per_pixel == pytest.approx(3 * 4 * 2, rel=0.5)  # the conv's output and its bias add, float32, 3 channels
    whole_mb = per_pixel * 300 * 500 / 1e6
    assert budget_tile(net, image, 0, 16, budget_mb=whole_mb * 1.01) == 0  # it fits: whole
    with caplog.at_level(logging.WARNING, logger="denoise.inference"):
        tile = budget_tile(net, image, 0, 16, budget_mb=per_pixel * 130 * 130 / 1e6)
    assert tile == 128 and "over inference.memory_budget_mb" in caplog.text
    net.seen.clear()
    out = denoise_image(net, image, tile=0, overlap=16, memory_budget_mb=per_pixel * 130 * 130 / 1e6)
    assert max(h * w for h, w in net.seen) <= 128 * 128  # never the whole image
    with torch.no_grad():
        assert torch.allclose(out, run_tiled(net, image, 128, 16), atol=1e-6)
    with pytest.raises(ValueError, match=r"inference.memory_budget_mb=0.001: even 64x64 tiles need about"):
        budget_tile(net, image, 0, 16, budget_mb=0.001)


def test_tiles_move_to_the_device_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only tiles are moved to the network's device, never the whole image."""
    moved: list[tuple[int, ...]] = []
    original = torch.Tensor.to

    def recording_to(self, *args, **kwargs):
        if any(isinstance(a, torch.device | str) for a in args) or "device" in kwargs:
            moved.append(tuple(self.shape))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", recording_to)
    image = torch.rand(1, 3, 300, 500)
    denoise_image(SmallMemory(limit=10**9), image, tile=128, overlap=16)
    inputs = [shape for shape in moved if shape[1] == 3]
    assert inputs and max(shape[-2] * shape[-1] for shape in inputs) <= 128 * 128


def test_tiles_run_in_batches_with_the_same_result(caplog: pytest.LogCaptureFixture) -> None:
    torch.manual_seed(0)
    net = SmallMemory(limit=10**9)
    batches: list[int] = []
    net.register_forward_pre_hook(lambda module, args: batches.append(args[0].shape[0]))
    image = torch.rand(2, 3, 300, 500)  # two images: each forward holds 2 x tile_batch tiles
    one = denoise_image(net, image, tile=128, overlap=16)
    assert set(batches) == {2}
    batches.clear()
    four = denoise_image(net, image, tile=128, overlap=16, tile_batch=4)
    assert batches == [8, 8, 8, 6]  # 15 tiles (3 rows x 5 columns): 4 + 4 + 4 + 3 a forward, of 2 images
    assert torch.allclose(one, four, atol=1e-6)
    # out of memory with a batch of tiles: fewer tiles a forward first
    net.limit, net.seen = 10**9, []
    original = net.forward
    net.forward = lambda x: (_ for _ in ()).throw(torch.OutOfMemoryError("fake")) if x.shape[0] > 4 else original(x)
    with caplog.at_level(logging.WARNING, logger="denoise.inference"):
        again = denoise_image(net, image, tile=128, overlap=16, tile_batch=4)
    assert "Out of memory with 4 tiles a forward; retrying with 2" in caplog.text
    assert torch.allclose(again, one, atol=1e-6)
