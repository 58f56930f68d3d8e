"""TLC (denoise/models/tlc.py): local pooling and attention that change a network's output only where its global
operations see more than a training crop's worth of pixels."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from denoise.models.nafnet import NAFNet
from denoise.models.pridnet import PRIDNet
from denoise.models.rednet import REDNet
from denoise.models.restormer import Restormer, TransposedAttention
from denoise.models.tlc import LocalAvgPool2d, convert_to_local, local_transposed_attention, window_starts


def test_local_pooling_is_the_window_mean_with_replicated_borders() -> None:
    x = torch.rand(2, 3, 20, 17)
    pool = LocalAvgPool2d((5, 4))
    expected = F.avg_pool2d(x, (5, 4), stride=1)  # 16 x 14 valid windows
    expected = F.pad(expected, (1, 2, 2, 2), mode="replicate")  # centred, the authors' border rule
    assert torch.allclose(pool(x), expected, atol=1e-6)
    assert torch.equal(LocalAvgPool2d((20, 17))(x), F.adaptive_avg_pool2d(x, 1))  # a window that covers it: global


def test_local_attention_in_one_window_is_the_global_attention() -> None:
    torch.manual_seed(0)
    attention = TransposedAttention(16, heads=2).eval()
    x = torch.rand(2, 16, 12, 10)
    with torch.no_grad():
        reference = attention(x)
        attention.local_window = (12, 10)
        assert torch.equal(attention(x), reference)
        q, k, v = attention.qkv_dwconv(attention.qkv(x)).chunk(3, dim=1)
        # windows that tile the map exactly: each window's attention on its own
        local = local_transposed_attention(q, k, v, 2, attention.temperature, (6, 5))
        for top in (0, 6):
            for left in (0, 5):
                box = (slice(None), slice(None), slice(top, top + 6), slice(left, left + 5))
                assert torch.allclose(local[box], attention.attend(q[box], k[box], v[box]), atol=1e-6)
    assert window_starts(100, 30) == [0, 24, 48, 70] and window_starts(20, 30) == [0]  # step ceil(70 / 3)


def trained_like(net: torch.nn.Module) -> torch.nn.Module:
    """Non-zero NAFNet beta/gamma (zero at init, so the blocks would be the identity) and eval mode."""
    torch.manual_seed(0)
    for name, parameter in net.named_parameters():
        if name.endswith(("beta", "gamma")):
            torch.nn.init.normal_(parameter, std=0.5)
    return net.eval()


@pytest.mark.parametrize(
    ("make", "changed"),
    [
        (lambda: NAFNet(3, width=16, enc_blocks=[1, 1, 1, 1], middle_blocks=1, dec_blocks=[1, 1, 1, 1]), 9),
        (lambda: PRIDNet(3, width=0.25), 2),
        (lambda: Restormer(dim=16, blocks=(1, 1, 1, 1), refinement_blocks=1), 8),
        (lambda: REDNet(in_channels=3, depth=10, channels=8), 0),
    ],
    ids=["nafnet", "pridnet", "restormer", "rednet"],
)
def test_tlc_changes_the_output_only_beyond_the_training_crop(make, changed: int) -> None:
    net = trained_like(make())
    crop, whole = torch.rand(1, 3, 48, 48), torch.rand(1, 3, 160, 144)
    with torch.no_grad():
        before = net(crop), net(whole)
        assert convert_to_local(net, train_size=48) == changed
        after = net(crop), net(whole)
    assert torch.equal(before[0], after[0])  # a training-size crop: nothing changes
    if changed:
        assert not torch.allclose(before[1], after[1], atol=1e-5)  # whole images: local statistics
    else:
        assert torch.equal(before[1], after[1])  # nothing global to convert
