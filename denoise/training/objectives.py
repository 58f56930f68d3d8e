"""Training objectives: what the network is asked to reproduce, with or without clean images.

* ``supervised``: noisy in, its clean image as the target (needs clean images).
* ``noise2noise`` (Lehtinen et al. 2018): noisy in, a second, independent noisy shot of the same scene as the
  target. Assumes zero-mean noise independent between the shots; then the expected target is the clean image
  and the network learns what supervised training learns (needs two shots per scene: SIDD's ``_010``/``_011``,
  NIND's and RENOIR's several noisy images, or synthetic data with two noise draws).
* ``neighbor2neighbor`` (Huang et al. 2021): one noisy image. A random neighbour sub-sampler takes two
  different pixels of every 2x2 cell, giving two half-size images ``g1(y)``, ``g2(y)`` of nearly the same scene
  with independent noise; the network maps ``g1(y)`` to ``g2(y)``, plus a regularizer weighted by ``gamma``
  (ramped up from 0 over the run, as the authors' code does) that makes up for the two pixels not being the
  same: ``|f(g1 y) - g2 y - (g1 f(y) - g2 f(y))|²`` with ``f(y)`` taken without gradient. Assumes noise
  independent between neighbouring pixels.
* ``noise2void`` (Krull et al. 2019): one noisy image; a fraction ``mask_ratio`` of pixel positions is hidden
  (each replaced by a random pixel of its 5x5 neighbourhood, as in N2V, or by the neighbourhood's median, N2V2's
  fix, Höck et al. 2022) and the loss counts only those pixels, against their original noisy values. The network
  never sees a masked pixel's own value, so it cannot learn the identity; it predicts a pixel from its
  surroundings. Assumes noise independent between pixels, so it fails on spatially correlated noise (real sRGB
  noise after demosaicing), as the README shows. The default is N2V's random neighbour: every network here has
  an identity path from input to output (REDNet's and DnCNN's residuals, NAFNet's global skip), and with the
  median a hidden pixel arrives already smooth in training but noisy at test, so the network learns to pass it
  through (RED20-16, 1,000 steps, sigma 25: 21.3 dB with the median, 27.8 dB with a random neighbour; 28.3 dB
  with 5% of the pixels hidden, the default, against 27.8 dB at 1% and 28.1 dB at 10%).

* ``apbsn`` (Lee et al. 2022): one noisy image, a blind-spot network (``model=bsn``): in training mode the
  network sees the image through pixel-shuffle down-sampling with a large stride, where real sRGB noise is no
  longer correlated between neighbours, and never sees the pixel it predicts; its output is scored against the
  noisy input itself (L1 in the authors' recipe). Inference (the network's eval mode) uses a small stride and
  random-replacing refinement (:mod:`denoise.models.bsn`). Works on spatially correlated noise, where
  Noise2Void and Neighbor2Neighbor fail.

Each objective says which batch keys it needs (:attr:`Objective.needs`); the DataModule is told, and refuses
what it cannot serve with a message that says which objective needs what.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

Network = Callable[[torch.Tensor], torch.Tensor]
Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: the 8 ordered pairs of different, adjacent pixels of a 2x2 cell (index = 2 * row + column)
NEIGHBOUR_PAIRS = ((0, 1), (1, 0), (0, 2), (2, 0), (1, 3), (3, 1), (2, 3), (3, 2))


class Objective:
    """A training loss computed from a batch; :attr:`needs` names the batch keys it reads."""

    name = "objective"
    needs: frozenset[str] = frozenset({"noisy"})

    def __call__(
        self, net: Network, batch: Mapping[str, Any], loss_fn: Loss, progress: float = 1.0, generator=None
    ) -> torch.Tensor:
        raise NotImplementedError

    def describe(self) -> str:
        return self.name

    def check_network(self, net: object) -> None:
        """Refuse a network this objective cannot train (every network suits most objectives)."""


class Supervised(Objective):
    name = "supervised"
    needs = frozenset({"noisy", "clean"})

    def __call__(self, net, batch, loss_fn, progress=1.0, generator=None):
        return loss_fn(net(batch["noisy"]).float(), batch["clean"].float())


class Noise2Noise(Objective):
    name = "noise2noise"
    needs = frozenset({"noisy", "noisy2"})

    def __call__(self, net, batch, loss_fn, progress=1.0, generator=None):
        return loss_fn(net(batch["noisy"]).float(), batch["noisy2"].float())


def neighbour_choice(batch: int, height: int, width: int, generator=None, device=None) -> torch.Tensor:
    """For every 2x2 cell of a ``height x width`` image, one of the :data:`NEIGHBOUR_PAIRS`, as ``B x H/2 x W/2 x 2``
    cell indices (0-3)."""
    pairs = torch.tensor(NEIGHBOUR_PAIRS, device=device)
    choice = torch.randint(
        0, len(NEIGHBOUR_PAIRS), (batch, height // 2, width // 2), generator=generator, device=device
    )
    return pairs[choice]


def subsample(image: torch.Tensor, choice: torch.Tensor, which: int) -> torch.Tensor:
    """``g1`` (``which=0``) or ``g2`` (``which=1``) of ``image`` for the cell choices of :func:`neighbour_choice`:
    the half-size image of the chosen pixel of every 2x2 cell."""
    batch, channels, height, width = image.shape
    half_h, half_w = height // 2, width // 2
    cells = image[..., : 2 * half_h, : 2 * half_w].reshape(batch, channels, half_h, 2, half_w, 2)
    cells = cells.permute(0, 1, 2, 4, 3, 5).reshape(batch, channels, half_h, half_w, 4)
    index = choice[..., which][:, None, :, :, None].expand(batch, channels, half_h, half_w, 1)
    return torch.gather(cells, -1, index)[..., 0]


class Neighbor2Neighbor(Objective):
    name = "neighbor2neighbor"
    needs = frozenset({"noisy"})

    def __init__(self, gamma: float = 2.0, ramp: bool = True) -> None:
        """``gamma``: the regularizer's weight (the authors' 2 for sRGB images), reached at the end of the run
        when ``ramp`` (it grows linearly from 0, as in their code)."""
        if gamma < 0:
            raise ValueError(f"model.objective.gamma={gamma}: expected >= 0")
        self.gamma, self.ramp = gamma, ramp

    def __call__(self, net, batch, loss_fn, progress=1.0, generator=None):
        noisy = batch["noisy"]
        choice = neighbour_choice(noisy.shape[0], noisy.shape[-2], noisy.shape[-1], generator, noisy.device)
        first, second = subsample(noisy, choice, 0), subsample(noisy, choice, 1)
        with torch.no_grad():
            full = net(noisy).float()
        expected_gap = subsample(full, choice, 0) - subsample(full, choice, 1)
        output = net(first).float()
        reconstruction = loss_fn(output, second.float())
        regularizer = loss_fn(output - expected_gap, second.float())
        gamma = self.gamma * min(max(progress, 0.0), 1.0) if self.ramp else self.gamma
        return reconstruction + gamma * regularizer

    def describe(self) -> str:
        return f"{self.name} (gamma {self.gamma}{', ramped' if self.ramp else ''})"


def blind_spot_mask(shape: tuple[int, ...], ratio: float, generator=None, device=None) -> torch.Tensor:
    """``B x 1 x H x W`` boolean mask with a fraction ``ratio`` of the positions of each image hidden (at least one)."""
    batch, _, height, width = shape
    count = max(1, round(ratio * height * width))
    scores = torch.rand(batch, height * width, generator=generator, device=device)
    hidden = scores.topk(count, dim=1).indices
    mask = torch.zeros(batch, height * width, dtype=torch.bool, device=device)
    mask.scatter_(1, hidden, True)
    return mask.view(batch, 1, height, width)


#: the 24 offsets of a 5x5 neighbourhood without its centre
_OFFSETS = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if (dy, dx) != (0, 0)]


def hide(noisy: torch.Tensor, mask: torch.Tensor, replacement: str = "median", generator=None) -> torch.Tensor:
    """``noisy`` with every masked position (all channels) replaced from its 5x5 neighbourhood without the centre,
    inside the image only (a reflected border would hand some pixels their own value back): the median of those
    neighbours (N2V2) or one of them at random (N2V)."""
    batch_index, _, rows, cols = mask.nonzero(as_tuple=True)
    height, width = noisy.shape[-2:]
    offsets = torch.tensor(_OFFSETS, device=noisy.device)  # 24 x 2
    neighbour_rows = rows[:, None] + offsets[:, 0]  # N x 24
    neighbour_cols = cols[:, None] + offsets[:, 1]
    inside = (neighbour_rows >= 0) & (neighbour_rows < height) & (neighbour_cols >= 0) & (neighbour_cols < width)
    neighbours = noisy[
        batch_index[:, None], :, neighbour_rows.clamp(0, height - 1), neighbour_cols.clamp(0, width - 1)
    ].transpose(1, 2)  # N x C x 24
    if replacement == "median":
        values = neighbours.masked_fill(~inside[:, None], float("nan")).nanmedian(dim=-1).values
    else:
        scores = torch.rand(inside.shape, generator=generator, device=noisy.device).masked_fill(~inside, -1.0)
        pick = scores.argmax(dim=-1)  # a random neighbour inside the image
        values = torch.gather(neighbours, -1, pick[:, None, None].expand(-1, neighbours.shape[1], 1))[..., 0]
    hidden = noisy.clone()
    hidden[batch_index, :, rows, cols] = values.to(noisy.dtype)
    return hidden


class Noise2Void(Objective):
    name = "noise2void"
    needs = frozenset({"noisy"})

    def __init__(self, mask_ratio: float = 0.05, replacement: str = "neighbor") -> None:
        """``mask_ratio``: the share of positions hidden in each crop (N2V: 0.2%; more gives more signal per
        step, measured best at 5% here); ``replacement``: ``neighbor`` (N2V) or ``median`` (N2V2; for networks
        without an identity path from input to output)."""
        if not 0 < mask_ratio < 1:
            raise ValueError(f"model.objective.mask_ratio={mask_ratio}: expected between 0 and 1")
        if replacement not in ("median", "neighbor"):
            raise ValueError(f"model.objective.replacement={replacement!r}: expected median or neighbor")
        self.mask_ratio, self.replacement = mask_ratio, replacement

    def __call__(self, net, batch, loss_fn, progress=1.0, generator=None):
        noisy = batch["noisy"]
        mask = blind_spot_mask(tuple(noisy.shape), self.mask_ratio, generator, noisy.device)
        output = net(hide(noisy, mask, self.replacement, generator)).float()
        chosen = mask.expand_as(noisy)
        return loss_fn(output[chosen][None], noisy.float()[chosen][None])

    def describe(self) -> str:
        return f"{self.name} ({self.mask_ratio:.2%} of pixels, {self.replacement} replacement)"


class PixelShuffleBlindSpot(Objective):
    name = "apbsn"
    needs = frozenset({"noisy"})

    def check_network(self, net: object) -> None:
        """The network must never see the pixel it predicts (``blind_spot``), or it learns to copy its input."""
        if not getattr(net, "blind_spot", False):
            raise ValueError(
                f"model.objective={self.name} needs a blind-spot network (model=bsn): model.net {type(net).__name__} "
                "sees the pixel it predicts, so scored against its own noisy input it would learn to copy it"
            )

    def __call__(self, net, batch, loss_fn, progress=1.0, generator=None):
        noisy = batch["noisy"]
        return loss_fn(net(noisy).float(), noisy.float())

    def describe(self) -> str:
        return f"{self.name} (blind-spot network scored against its own noisy input)"
