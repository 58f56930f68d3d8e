"""Synthetic noise models: ``noisy = clean + noise`` on images in [0, 1].

Noise levels are given on the 0-255 scale, as papers quote them (sigma = 25 means N(0, (25/255)^2)).
``draw``/``draw_batch`` also return the noise's standard deviation at every pixel on the [0, 1] scale (a
``1 x H x W`` map per image: constant for Gaussian noise, ``sqrt(a * clean + sigma^2)`` for Poisson-Gaussian):
the known level that noise-level-map networks (FFDNet, DRUNet) are fed in training, from the same draws.
A level may be a fixed number or a ``[low, high]`` range; a range draws one level per image, uniformly,
for blind training. Each call takes a ``torch.Generator`` so validation and test noise can be drawn from
a fixed per-image seed and every run scores the same noisy images. A noise model is a part like any other: its
config (``conf/noise/``) names its class by ``_target_``, and :meth:`GaussianNoise.config` gives that spec back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

Level = float | Sequence[float]


def _check_level(name: str, value: Level) -> tuple[float, float]:
    """Normalize a fixed level or a ``[low, high]`` range to a (low, high) pair with a clear error."""
    if isinstance(value, int | float):
        low = high = float(value)
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        low, high = float(value[0]), float(value[1])
    else:
        raise ValueError(f"noise.{name} must be a number or a [low, high] range, got {value!r}")
    if low < 0 or high < low:
        raise ValueError(f"noise.{name}={value!r}: expected 0 <= low <= high")
    return low, high


def _given(bounds: tuple[float, float]) -> float | list[float]:
    """A level as a config writes it: one number, or the ``[low, high]`` range."""
    return bounds[0] if bounds[0] == bounds[1] else list(bounds)


def _draw(bounds: tuple[float, float], generator: torch.Generator | None) -> float:
    low, high = bounds
    if low == high:
        return low
    return low + (high - low) * float(torch.rand((), generator=generator))


def _draw_each(bounds: tuple[float, float], clean: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One level per image of a ``B x C x H x W`` batch, on its device (shape ``B x 1 x 1 x 1``): the same
    distribution as :func:`_draw` per image, without a host round trip."""
    low, high = bounds
    level = low + (high - low) * torch.rand(clean.shape[0], generator=generator, device=clean.device)
    return level.to(clean.dtype).view(-1, 1, 1, 1)


class GaussianNoise:
    """Additive white Gaussian noise, ``sigma`` on the 0-255 scale (fixed, or a range for blind training)."""

    def __init__(self, sigma: Level = 25.0, clip: bool = False) -> None:
        self.sigma = _check_level("sigma", sigma)
        self.clip = clip

    def __call__(self, clean: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.draw(clean, generator)[0]

    def draw(self, clean: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``C x H x W`` clean -> (noisy, the ``1 x H x W`` map of the noise's standard deviation)."""
        sigma = _draw(self.sigma, generator) / 255.0
        noise = torch.randn(clean.shape, generator=generator, dtype=clean.dtype) * sigma
        noisy = clean + noise
        level = torch.full((1, *clean.shape[-2:]), sigma, dtype=clean.dtype)
        return (noisy.clamp(0.0, 1.0) if self.clip else noisy), level

    def batch(self, clean: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Noise for a ``B x C x H x W`` batch on its own device, one level per image (``data.on_device``)."""
        return self.draw_batch(clean, generator)[0]

    def draw_batch(
        self, clean: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        sigma = _draw_each(self.sigma, clean, generator) / 255.0
        noisy = clean + torch.randn(clean.shape, generator=generator, dtype=clean.dtype, device=clean.device) * sigma
        level = sigma.expand(clean.shape[0], 1, *clean.shape[-2:])
        return (noisy.clamp(0.0, 1.0) if self.clip else noisy), level

    def known_sigma(self) -> float | None:
        """The noise's standard deviation on the [0, 1] scale when it is one fixed level; None for a blind range."""
        return self.sigma[0] / 255.0 if self.sigma[0] == self.sigma[1] else None

    def expected_fit(self) -> dict[str, float] | None:
        """``var = a * x + b`` as this noise implies it (the EDA's measured fit should find it): ``a = 0``,
        ``b = sigma^2``, with its ``std``; None for a blind range."""
        sigma = self.known_sigma()
        return None if sigma is None else {"a": 0.0, "b": sigma**2, "std": sigma}

    def config(self) -> dict[str, Any]:
        """The ``_target_`` spec that builds this noise (``conf/noise/gaussian.yaml``), levels on the 0-255 scale."""
        return {"_target_": f"{__name__}.GaussianNoise", "sigma": _given(self.sigma), "clip": self.clip}

    def __repr__(self) -> str:
        return f"GaussianNoise(sigma={self.sigma}, clip={self.clip})"


class PoissonGaussianNoise:
    """Shot plus read noise, ``noisy = a * Poisson(clean / a) + N(0, (sigma/255)^2)``.

    The variance is ``a * clean + (sigma/255)^2``, the heteroscedastic model fitted to real sensors
    (Foi et al. 2008), so the EDA's ``var = a x + b`` fit recovers ``a`` and ``b = (sigma/255)^2``.
    """

    def __init__(self, a: Level = 0.01, sigma: Level = 5.0, clip: bool = False) -> None:
        self.a = _check_level("a", a)
        self.sigma = _check_level("sigma", sigma)
        self.clip = clip

    def __call__(self, clean: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.draw(clean, generator)[0]

    def draw(self, clean: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``C x H x W`` clean -> (noisy, the ``1 x H x W`` map of the noise's standard deviation, whose variance
        is the channels' mean of ``a * clean + sigma^2``)."""
        a = _draw(self.a, generator)
        sigma = _draw(self.sigma, generator) / 255.0
        shot = torch.poisson(clean.clamp_min(0.0) / a, generator=generator) * a if a > 0 else clean
        noisy = shot + torch.randn(clean.shape, generator=generator, dtype=clean.dtype) * sigma
        level = (a * clean.clamp_min(0.0) + sigma**2).mean(dim=-3, keepdim=True).sqrt()
        return (noisy.clamp(0.0, 1.0) if self.clip else noisy), level

    def batch(self, clean: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Noise for a ``B x C x H x W`` batch on its own device, one ``a`` and sigma per image."""
        return self.draw_batch(clean, generator)[0]

    def draw_batch(
        self, clean: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        a = _draw_each(self.a, clean, generator)
        sigma = _draw_each(self.sigma, clean, generator) / 255.0
        safe_a = a.clamp_min(1e-12)
        shot = torch.where(a > 0, torch.poisson(clean.clamp_min(0.0) / safe_a, generator=generator) * safe_a, clean)
        noisy = shot + torch.randn(clean.shape, generator=generator, dtype=clean.dtype, device=clean.device) * sigma
        level = (a * clean.clamp_min(0.0) + sigma**2).mean(dim=1, keepdim=True).sqrt()
        return (noisy.clamp(0.0, 1.0) if self.clip else noisy), level

    def known_sigma(self) -> float | None:
        """None: the standard deviation depends on the image (``a * x + sigma^2``), no one level."""
        return None

    def expected_fit(self) -> dict[str, float] | None:
        """``a`` and ``b = sigma^2`` for fixed levels (the std depends on the image: NaN); None for ranges."""
        if self.a[0] != self.a[1] or self.sigma[0] != self.sigma[1]:
            return None
        return {"a": self.a[0], "b": (self.sigma[0] / 255.0) ** 2, "std": float("nan")}

    def config(self) -> dict[str, Any]:
        """The ``_target_`` spec that builds this noise (``conf/noise/poisson_gaussian.yaml``)."""
        return {"_target_": f"{__name__}.PoissonGaussianNoise", "a": _given(self.a), "sigma": _given(self.sigma),
                "clip": self.clip}  # fmt: skip

    def __repr__(self) -> str:
        return f"PoissonGaussianNoise(a={self.a}, sigma={self.sigma}, clip={self.clip})"


NoiseModel = GaussianNoise | PoissonGaussianNoise
