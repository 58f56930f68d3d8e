"""DenoiseModule pieces: losses, per-iteration schedules, metrics, overfitting one batch, safe specs."""

from __future__ import annotations

import math

import pytest
import torch
from omegaconf import OmegaConf

from denoise.config.specs import SpecError, build, loss_spec
from denoise.evaluation.metrics import image_metrics, psnr
from denoise.training.losses import charbonnier, psnr_loss
from denoise.training.module import DenoiseModule
from denoise.training.optim import constant, cosine_with_warmup, step_decay
from tests.helpers import CONF

RED_SMALL = {"_target_": "denoise.models.rednet.REDNet", "depth": 10, "channels": 16, "in_channels": 3}


def test_losses_by_spec() -> None:
    """Every loss of conf/model/loss/ built from its spec, with the value it must give; a name that an older
    checkpoint stored means the same loss; an unknown target or name is refused with the config key."""
    pred, target = torch.full((2, 1, 4, 4), 0.6), torch.full((2, 1, 4, 4), 0.5)
    expected = {"l1": 0.1, "l2": 0.01, "charbonnier": math.sqrt(0.01 + 1e-6), "psnr": -20.0}  # psnr: MSE 0.01, 20 dB
    for name, value in expected.items():
        spec = OmegaConf.to_container(OmegaConf.load(CONF / "model" / "loss" / f"{name}.yaml"))
        assert build(spec, kind="loss")(pred, target).item() == pytest.approx(value, abs=1e-4), name
        assert build(loss_spec(name), kind="loss")(pred, target).item() == pytest.approx(value, abs=1e-4), name
    assert charbonnier(pred, target).item() == pytest.approx(math.sqrt(0.01 + 1e-6), abs=1e-6)
    assert psnr_loss(pred, target).item() == pytest.approx(-20.0, abs=1e-4)
    eps = build({"_target_": "denoise.training.losses.CharbonnierLoss", "eps": 0.1}, kind="loss")
    assert eps(pred, target).item() == pytest.approx(math.sqrt(0.01 + 0.01), abs=1e-6)
    assert loss_spec(None) == {"_target_": "torch.nn.L1Loss"}
    with pytest.raises(SpecError, match=r"model\.loss\._target_='denoise.training.losses.SSIMLoss' is not allowed"):
        build({"_target_": "denoise.training.losses.SSIMLoss"}, what="model.loss", kind="loss")
    with pytest.raises(SpecError, match=r"model\.loss='ssim' is not a loss: choose one with model/loss=<name>"):
        loss_spec("ssim")


def _optimizer() -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)


def _lrs(scheduler: torch.optim.lr_scheduler.LRScheduler, steps: int) -> list[float]:
    rates = []
    for _ in range(steps):
        rates.append(scheduler.optimizer.param_groups[0]["lr"])
        scheduler.optimizer.step()
        scheduler.step()
    return rates


def test_cosine_with_warmup_per_iteration() -> None:
    rates = _lrs(cosine_with_warmup(_optimizer(), total_steps=110, warmup_steps=10), 110)
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0)  # linear warmup
    assert rates[10] == pytest.approx(1.0)
    assert rates[60] == pytest.approx(0.5, abs=1e-9)  # half way through the cosine
    assert rates[109] < 0.001


def _rate_after_a_step(scheduler: torch.optim.lr_scheduler.LRScheduler) -> float:
    scheduler.optimizer.step()
    scheduler.step()
    return scheduler.optimizer.param_groups[0]["lr"]


def test_schedules_follow_a_time_budget_when_it_runs_out_first() -> None:
    """With trainer.max_time the progress is the larger of the step and time fractions: a slow machine reaches
    the schedule's end when its budget does; a fast one still by steps."""
    from denoise.training.optim import exponential_decay, piecewise

    spent = [0.0]
    scheduler = cosine_with_warmup(_optimizer(), total_steps=100, min_lr_ratio=0.01, time_fraction=lambda: spent[0])
    rates = _lrs(scheduler, 10)  # 10 of 100 steps, no time spent: the step fraction rules
    assert rates[9] == pytest.approx(0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * 9 / 100)))
    spent[0] = 0.5
    assert _rate_after_a_step(scheduler) == pytest.approx(0.01 + 0.99 * 0.5)  # half the budget: half the cosine
    spent[0] = 1.0
    assert _rate_after_a_step(scheduler) == pytest.approx(0.01)
    spent[0] = 0.5
    exponential = exponential_decay(_optimizer(), 100, final_lr_ratio=0.1, time_fraction=lambda: spent[0])
    assert _rate_after_a_step(exponential) == pytest.approx(0.1**0.5)
    pieces = piecewise(_optimizer(), 100, milestones=[0.25, 0.75], ratios=[0.5, 0.1], time_fraction=lambda: spent[0])
    assert _rate_after_a_step(pieces) == 0.5
    spent[0] = 0.0
    assert _rate_after_a_step(cosine_with_warmup(_optimizer(), total_steps=100)) == pytest.approx(
        0.5 * (1 + math.cos(math.pi / 100))
    )


def test_step_and_constant_schedules() -> None:
    rates = _lrs(step_decay(_optimizer(), total_steps=30, step_size=10, gamma=0.5), 30)
    assert rates[9] == 1.0 and rates[10] == 0.5 and rates[29] == 0.25
    assert set(_lrs(constant(_optimizer(), total_steps=5), 5)) == {1.0}


def test_metrics_of_output_and_input() -> None:
    clean = torch.full((2, 3, 32, 32), 0.5)
    noisy = clean + 0.1
    values = image_metrics(clean.clone(), noisy, clean)
    assert values["psnr_noisy"].tolist() == pytest.approx([20.0, 20.0], abs=1e-4)
    assert torch.isinf(values["psnr"]).all() and values["ssim"].tolist() == pytest.approx([1.0, 1.0])
    # outputs are clamped to [0, 1] before scoring
    assert psnr(torch.full((1, 1, 8, 8), 1.7), torch.ones(1, 1, 8, 8)).isinf().all()


@pytest.mark.slow
def test_overfit_one_batch_raises_psnr() -> None:
    """One fixed batch, 300 steps: PSNR climbs > 6 dB from the start and ends > 1.5 dB above the noisy input."""
    torch.manual_seed(0)
    clean = torch.nn.functional.interpolate(torch.rand(8, 3, 8, 8), size=(32, 32), mode="bilinear")
    noisy = clean + 25 / 255 * torch.randn_like(clean)
    net = {**RED_SMALL, "channels": 32}
    l1, adam = {"_target_": "torch.nn.L1Loss"}, {"_target_": "torch.optim.Adam", "lr": 1e-3}
    module = DenoiseModule(net=net, loss=l1, optimizer=adam)
    optimizer = module.configure_optimizers()["optimizer"]
    with torch.no_grad():
        before = psnr(module(noisy), clean).mean().item()
    for _ in range(300):
        loss = module.loss_fn(module.net(noisy), clean)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = psnr(module(noisy), clean).mean().item()
    noisy_psnr = psnr(noisy, clean).mean().item()
    assert after - before > 6.0, (before, after)
    assert after - noisy_psnr > 1.5, (noisy_psnr, after)


def test_hparams_are_plain_data() -> None:
    from omegaconf import OmegaConf

    charbonnier = OmegaConf.create({"_target_": "denoise.training.losses.CharbonnierLoss", "eps": 1e-3})
    module = DenoiseModule(net=OmegaConf.create(RED_SMALL), loss=charbonnier)
    assert type(module.hparams["net"]) is dict and module.hparams["net"] == RED_SMALL
    assert type(module.hparams["loss"]) is dict and module.hparams["loss"]["eps"] == 1e-3
    old = DenoiseModule(net=RED_SMALL, loss="charbonnier")  # what a checkpoint of an earlier version stored
    assert old.hparams["loss"] == {"_target_": "denoise.training.losses.CharbonnierLoss"}
    assert type(old.loss_fn).__name__ == "CharbonnierLoss"
    assert module.hparams["optimizer"]["_target_"] == "torch.optim.Adam"


def test_build_refuses_targets_outside_the_allow_list() -> None:
    with pytest.raises(ValueError, match=r"model\.net\._target_='os\.system' is not allowed"):
        build({"_target_": "os.system", "command": "echo pwned"}, what="model.net")
    with pytest.raises(ValueError, match=r"'denoise\.models\.nothing\.Here' is not allowed"):
        build({"_target_": "denoise.models.nothing.Here"})  # a closed list: not even imported


@pytest.mark.parametrize(
    "spec",
    [
        {"_target_": "denoise.models.mwcnn.MWCNN", "in_channels": 3, "levels": 2, "widths": [8, 8]},
        {"_target_": "denoise.models.nafnet.NAFNet", "in_channels": 3, "width": 8, "enc_blocks": [1, 1],
         "middle_blocks": 1, "dec_blocks": [1, 1]},
        {"_target_": "denoise.models.autoencoder.ConvAutoencoder", "in_channels": 3},
        {"_target_": "denoise.models.pridnet.PRIDNet", "in_channels": 3, "width": 0.125},
    ],
)  # fmt: skip
def test_networks_own_their_padding(spec: dict) -> None:
    """Every down-sampling network takes any height and width itself, by the one rule of
    denoise.models.padding: its output on an odd size is its output on the reflect-padded image, cropped back."""
    from denoise.models.padding import crop_to, pad_to_multiple

    torch.manual_seed(0)
    net = build(spec).eval()
    assert net.size_multiple > 1
    x = torch.rand(1, 3, 37, 53)
    padded, size = pad_to_multiple(x, net.size_multiple)
    assert padded.shape[-2] % net.size_multiple == 0 and padded.shape[-1] % net.size_multiple == 0
    with torch.no_grad():
        out = net(x)
        assert out.shape == x.shape
        assert torch.allclose(out, crop_to(net(padded), size), atol=1e-6)
