"""AP-BSN (denoise/models/bsn.py) against the authors' design: the blind spot, the receptive field, the parameter
count and names of their code, pixel-shuffle down-sampling, R3, and its place in training (objective=apbsn)."""

from __future__ import annotations

import pytest
import torch

from denoise.models.bsn import APBSN, DBSN, CentrallyMaskedConv2d, pd_down, pd_up
from denoise.training.objectives import PixelShuffleBlindSpot


def influence(net: torch.nn.Module, size: int, at: tuple[int, int]) -> torch.Tensor:
    """``|d out[at] / d input|`` summed over channels: which input pixels the output at ``at`` depends on."""
    torch.manual_seed(0)
    x = torch.rand(1, 3, size, size, requires_grad=True)
    net(x)[0, :, at[0], at[1]].sum().backward()
    return x.grad.abs().sum(dim=1)[0]


@pytest.mark.parametrize("num_modules", [1, 2, 9])
def test_the_output_at_a_pixel_never_depends_on_that_pixel(num_modules: int) -> None:
    net = DBSN(3, 3, channels=16, num_modules=num_modules)
    size = 2 * (2 + 3 * num_modules) + 9
    centre = size // 2
    grad = influence(net, size, (centre, centre))
    assert grad[centre, centre] == 0
    assert grad[centre, centre + 1] > 0 and grad[centre + 1, centre] > 0  # its neighbours do count


@pytest.mark.parametrize(("num_modules", "field"), [(1, 11), (2, 17), (9, 59)])
def test_receptive_field_is_the_authors(num_modules: int, field: int) -> None:
    """Branch 2 (stride 3): the masked 5x5 conv (2 a side) and ``num_modules`` 3x3 convs dilated by 3 (3 a side):
    ``2 * (2 + 3 * num_modules) + 1`` pixels, 59 for the authors' 9 modules."""
    size = field + 12
    centre = size // 2
    grad = influence(DBSN(3, 3, channels=8, num_modules=num_modules), size, (centre, centre))
    rows = torch.nonzero(grad.sum(dim=1)).flatten()
    cols = torch.nonzero(grad.sum(dim=0)).flatten()
    assert rows.max() - rows.min() + 1 == field and cols.max() - cols.min() + 1 == field


def test_training_mode_is_blind_through_pd_and_its_blind_spot_stays_at_the_pixel() -> None:
    """Behind PD with stride 5 the network sees every 5th pixel: the output at a pixel depends on pixels 5 apart
    (of its own sub-image) and never on itself or its direct neighbours, whose noise is correlated with its own."""
    net = APBSN(channels=16, num_modules=2).train()
    grad = influence(net, 60, (30, 30))
    assert grad[30, 30] == 0
    assert grad[29:32, 29:32].sum() == 0  # nothing from the 3x3 neighbourhood
    assert grad[30, 35] > 0 and grad[35, 30] > 0  # the sub-image's neighbours
    seen = torch.nonzero(grad)
    assert ((seen - 30) % 5 == 0).all()  # only pixels of its own sub-image


def test_eval_mode_denoises_with_the_small_stride_and_r3_deterministically() -> None:
    net = APBSN(channels=16, num_modules=2, r3_repeats=3).eval()
    x = torch.rand(1, 3, 37, 53)
    with torch.no_grad():
        first, second = net(x), net(x)
        net.r3_repeats = 0
        plain = net(x)
    assert first.shape == x.shape and torch.equal(first, second)  # R3's masks come from r3_seed
    assert not torch.allclose(first, plain)  # R3 changed the output
    assert torch.allclose(plain, net.through_pd(x, 2))


def test_pd_round_trip_and_layout_match_the_authors() -> None:
    """PD tiles the stride x stride sub-images, each with its pad of zeros: the sub-image (i, j) holds pixels
    (i::s, j::s); the inverse is exact."""
    x = torch.arange(2 * 3 * 10 * 15, dtype=torch.float32).reshape(2, 3, 10, 15)
    down = pd_down(x, 5, pad=2)
    assert down.shape == (2, 3, 10 + 20, 15 + 20)
    sub_h, sub_w = 10 // 5 + 4, 15 // 5 + 4
    i, j = 1, 3
    tile = down[..., i * sub_h : (i + 1) * sub_h, j * sub_w : (j + 1) * sub_w]
    assert torch.equal(tile[..., 2:-2, 2:-2], x[..., i::5, j::5])
    assert tile[..., :2, :].abs().sum() == 0
    assert torch.equal(pd_up(down, 5, pad=2), x)
    assert torch.equal(pd_up(pd_down(x, 1), 1), x)


def test_parameter_names_are_the_authors_so_their_weights_load() -> None:
    names = set(APBSN().state_dict())
    expected = {
        "bsn.head.0.weight",
        "bsn.branch1.body.0.weight",
        "bsn.branch1.body.0.mask",
        "bsn.branch2.body.0.weight",
        "bsn.branch2.body.6.body.0.weight",
        "bsn.branch2.body.14.body.2.weight",
        "bsn.branch2.body.15.weight",
        "bsn.tail.6.weight",
    }
    assert expected <= names
    assert APBSN().bsn.branch2.body[0].weight.shape == (128, 128, 5, 5)
    assert sum(p.numel() for p in APBSN().parameters()) == 3_656_131


def test_the_masked_weight_cannot_come_back() -> None:
    conv = CentrallyMaskedConv2d(2, 2, kernel_size=3, padding=1)
    with torch.no_grad():
        conv.weight.fill_(1.0)  # as an optimizer step or a crafted state dict might
    x = torch.zeros(1, 2, 5, 5)
    x[0, :, 2, 2] = 1.0
    assert conv(x)[0, :, 2, 2].sub(conv.bias).abs().max() == 0


def test_objective_scores_the_output_against_the_noisy_input_itself() -> None:
    net = APBSN(channels=8, num_modules=1).train()
    noisy = torch.rand(2, 3, 20, 20)
    loss = PixelShuffleBlindSpot()(net, {"noisy": noisy}, torch.nn.L1Loss())
    assert loss.item() == pytest.approx(torch.nn.functional.l1_loss(net(noisy), noisy).item(), rel=1e-6)
    assert PixelShuffleBlindSpot.needs == frozenset({"noisy"})


def test_apbsn_refuses_a_network_that_sees_its_pixel() -> None:
    from denoise.training.module import DenoiseModule

    objective = {"_target_": "denoise.training.objectives.PixelShuffleBlindSpot"}
    red = {"_target_": "denoise.models.rednet.REDNet", "depth": 10, "channels": 8, "in_channels": 3}
    with pytest.raises(ValueError, match=r"model.objective=apbsn needs a blind-spot network \(model=bsn\).*copy it"):
        DenoiseModule(net=red, objective=objective)
    bsn = {"_target_": "denoise.models.bsn.APBSN", "channels": 8, "num_modules": 1}
    assert DenoiseModule(net=bsn, objective=objective).objective.name == "apbsn"


@pytest.mark.parametrize("bad", [{"pd_train": 0}, {"r3_p": 1.5}, {"r3_repeats": -1}, {"channels": 15}])
def test_bad_settings_name_their_key(bad: dict) -> None:
    with pytest.raises(ValueError, match=f"model.net.{next(iter(bad))}"):
        APBSN(**bad)
