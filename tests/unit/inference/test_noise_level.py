"""Networks that take a noise-level map (FFDNet, DRUNet): the level the data knows, the estimate where it knows
none, a fixed number, and the map arriving intact through tiles and the x8 ensemble."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch
from hydra.utils import instantiate
from skimage.restoration import estimate_sigma

from denoise.data.noise import GaussianNoise, PoissonGaussianNoise
from denoise.data.noise_estimate import haar_sigma as estimate_noise_level
from denoise.inference import denoise_image, noise_level_for
from denoise.models.noise_map import noise_level_map


class EchoLevel(torch.nn.Module):
    """Outputs its level map in every channel: shows exactly what level each pixel was given."""

    takes_noise_level = True

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        return self.scale * noise_level_map(level, x).expand_as(x)


def photo() -> torch.Tensor:
    return torch.from_numpy(skimage.data.astronaut()[:192, :160]).permute(2, 0, 1).float()[None] / 255


def test_noise_draws_report_their_level_without_changing_the_noise() -> None:
    clean = photo()[0]
    for noise in (GaussianNoise(sigma=[10, 40]), PoissonGaussianNoise(a=0.02, sigma=5)):
        noisy, level = noise.draw(clean, torch.Generator().manual_seed(3))
        assert torch.equal(noisy, noise(clean, torch.Generator().manual_seed(3)))  # the same draws as before
        assert level.shape == (1, *clean.shape[-2:])
    noisy, level = GaussianNoise(sigma=[10, 40]).draw(clean, torch.Generator().manual_seed(3))
    sigma = float(level[0, 0, 0])
    assert torch.all(level == sigma) and 10 / 255 <= sigma <= 40 / 255
    assert float((noisy - clean).std()) == pytest.approx(sigma, rel=0.02)
    _, level = PoissonGaussianNoise(a=0.02, sigma=5).draw(clean, torch.Generator().manual_seed(3))
    expected = (0.02 * clean + (5 / 255) ** 2).mean(dim=0, keepdim=True).sqrt()
    assert torch.allclose(level, expected)
    batch = photo().repeat(2, 1, 1, 1)
    _, levels = GaussianNoise(sigma=[0, 50]).draw_batch(batch, torch.Generator().manual_seed(0))
    assert levels.shape == (2, 1, 192, 160) and levels[0, 0, 0, 0] != levels[1, 0, 0, 0]  # one level per image


def test_the_estimate_finds_the_noise_level() -> None:
    clean = photo()
    generator = torch.Generator().manual_seed(0)
    for sigma in (10, 25, 50):
        noisy = clean + sigma / 255 * torch.randn(clean.shape, generator=generator)
        estimate = float(estimate_noise_level(noisy)[0]) * 255
        assert estimate == pytest.approx(sigma, rel=0.06)
        reference = 255 * estimate_sigma(noisy[0].permute(1, 2, 0).numpy(), channel_axis=-1, average_sigmas=True)
        assert estimate == pytest.approx(reference, rel=0.03)


def test_the_level_modes() -> None:
    noisy = torch.rand(2, 3, 16, 20)
    known = torch.tensor([0.1, 0.2]).view(2, 1, 1, 1)
    assert torch.allclose(noise_level_for(noisy, 25), torch.full((2, 1, 16, 20), 25 / 255))
    assert torch.equal(noise_level_for(noisy, "auto", known)[:, 0, 3, 4], torch.tensor([0.1, 0.2]))
    assert torch.equal(noise_level_for(noisy, "known", known), noise_level_map(known, noisy))
    estimated = noise_level_for(noisy, "estimate", known)  # the data's level is ignored
    assert torch.allclose(estimated[:, 0, 0, 0], estimate_noise_level(noisy))
    assert torch.allclose(noise_level_for(noisy, "auto"), estimated)  # nothing known: estimated
    with pytest.raises(ValueError, match=r"inference.noise_level=known: this data has no known noise level"):
        noise_level_for(noisy, "known")
    with pytest.raises(ValueError, match=r"inference.noise_level='loud'"):
        noise_level_for(noisy, "loud")
    with pytest.raises(ValueError, match="a noise-level map must be B x 1 x 16 x 20"):
        noise_level_map(torch.rand(2, 1, 8, 8), noisy)


@pytest.mark.parametrize(("tile", "ensemble"), [(0, False), (24, False), (24, True)])
def test_the_level_map_reaches_every_pixel_through_tiles_and_ensemble(tile: int, ensemble: bool) -> None:
    noisy = torch.rand(1, 3, 45, 61)
    level = torch.linspace(0, 1, 45 * 61).view(1, 1, 45, 61)  # a different level at every pixel
    out = denoise_image(EchoLevel(), noisy, tile=tile, overlap=8, ensemble=ensemble, known_level=level)
    assert torch.allclose(out, level.expand_as(noisy), atol=1e-6)


def test_training_feeds_the_known_level_and_estimates_it_for_real_noise(cfg_train) -> None:
    from tests.helpers import with_values

    cfg = with_values(cfg_train, "model.net._target_=denoise.models.drunet.DRUNet", "model.net.widths=[8,8,8,8]",
                      "model.net.blocks=1")  # fmt: skip
    del cfg.model.net.depth, cfg.model.net.channels
    model = instantiate(cfg.model)
    seen: list[torch.Tensor] = []
    inner = model.net.forward
    model.net.forward = lambda x, level: (seen.append(level.detach().clone()), inner(x, level))[1]
    batch = {"noisy": torch.rand(2, 3, 32, 32), "clean": torch.rand(2, 3, 32, 32),
             "noise_level": torch.tensor([0.1, 0.3]).view(2, 1, 1, 1).expand(2, 1, 32, 32)}  # fmt: skip
    model.objective(model._training_net(batch), batch, model.loss_fn)
    assert torch.equal(seen[-1][:, 0, 0, 0], torch.tensor([0.1, 0.3]))
    del batch["noise_level"]
    model.objective(model._training_net(batch), batch, model.loss_fn)
    assert torch.allclose(seen[-1][:, 0, 0, 0], estimate_noise_level(batch["noisy"]))
    dm = instantiate(cfg.data)
    dm.serve({"noisy", "clean", "noise_level"})
    dm.setup("fit")
    sample = dm.datasets["train"][0]
    assert torch.allclose(sample["noise_level"], torch.full((1, 32, 32), cfg.noise.sigma / 255))
    assert np.isclose(float(dm.datasets["val"][0]["noise_level"].mean()), cfg.noise.sigma / 255)
