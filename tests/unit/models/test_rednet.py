"""REDNet against the paper: parameter counts, skip layout, residual output, any input size."""

from __future__ import annotations

import pytest
import torch

from denoise.models.rednet import REDNet


def count(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize(
    ("depth", "channels", "in_channels", "expected"),
    [
        (30, 64, 3, 1_037_507),  # RED30, the paper's 64 channels, RGB
        (30, 64, 1, 1_035_201),  # gray
        (30, 128, 1, 4_134_785),  # the authors' released 128-channel gray model
    ],
)
def test_parameter_counts_match_the_paper(depth: int, channels: int, in_channels: int, expected: int) -> None:
    assert count(REDNet(depth, channels, in_channels)) == expected


@pytest.mark.parametrize("depth", [10, 20, 30])
def test_parameter_count_formula(depth: int) -> None:
    half, f, c = depth // 2, 64, 3
    formula = (9 * c * f + f) + 2 * (half - 1) * (9 * f * f + f) + (9 * f * c + c)
    assert count(REDNet(depth, f, c)) == formula


def test_layer_and_skip_layout() -> None:
    """depth/2 conv + depth/2 deconv layers; a skip from every second conv layer; none in RED10."""
    for depth, skips in [(10, 0), (20, 4), (30, 7)]:
        net = REDNet(depth, 16, 3)
        assert len(net.encoder) == len(net.decoder) == depth // 2
        assert all(isinstance(m, torch.nn.ConvTranspose2d) for m in net.decoder)
        assert len(net.skip_into) == skips
        # every skip source is an even conv layer, and it feeds the deconv layer producing its shape
        assert all(src % 2 == 0 and dst == depth // 2 - src for dst, src in net.skip_into.items())


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("depth", [10, 20, 30])
def test_output_shape_equals_input_on_odd_sizes(depth: int, in_channels: int) -> None:
    net = REDNet(depth, 8, in_channels)
    x = torch.rand(2, in_channels, 37, 53)
    assert net(x).shape == x.shape


def test_net_predicts_the_residual() -> None:
    """With the last deconvolution zeroed the network is exactly the identity: the input is added back."""
    net = REDNet(20, 8, 3)
    torch.nn.init.zeros_(net.decoder[-1].weight)
    torch.nn.init.zeros_(net.decoder[-1].bias)
    x = torch.rand(1, 3, 20, 24)
    assert torch.equal(net(x), x)


def test_skips_change_the_output() -> None:
    """The skip connections are live: removing them changes RED20's output, and RED10's has none to remove."""
    torch.manual_seed(0)
    x = torch.rand(1, 3, 16, 16)
    net = REDNet(20, 8, 3)
    with torch.no_grad():
        out_with = net(x)
        net.skip_into = {}
        assert not torch.allclose(out_with, net(x))


def test_every_parameter_gets_a_gradient() -> None:
    net = REDNet(30, 8, 3)
    net(torch.rand(2, 3, 16, 16)).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_bad_depth_names_the_key() -> None:
    with pytest.raises(ValueError, match=r"model\.net\.depth=15.*\(10, 20, 30\)"):
        REDNet(depth=15)
