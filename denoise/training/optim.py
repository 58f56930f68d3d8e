"""Learning-rate schedules stepped once per optimizer step (not per epoch).

Each factory takes the optimizer and the run's ``total_steps`` (Lightning's ``estimated_stepping_batches``),
so a schedule fits any epoch count or dataset size. Configs name them as Hydra partials in
``conf/scheduler/``.

A run with a time budget (``trainer.max_time``) also hands the schedules that decay over the whole run
(cosine, exponential, piecewise) ``time_fraction``, the share of the budget spent so far: their progress is
the larger of the step and the time fractions, so the rate reaches its end when the budget does, on a slow
machine as on a fast one (the quickstart's fixed wall time).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

#: the share of a run's time budget spent so far (0 to 1)
TimeFraction = Callable[[], float]
#: optimizers with a fused implementation (one kernel per step for all parameters) on CUDA
FUSED_OPTIMIZERS = ("torch.optim.Adam", "torch.optim.AdamW", "torch.optim.SGD", "torch.optim.Adagrad")


def resolve_fused(spec: dict, device_type: str) -> dict:
    """``fused: auto`` in an optimizer spec: the fused implementation on CUDA (one kernel updates every parameter,
    instead of a few per tensor: fewer launches for the host to issue each step), PyTorch's default elsewhere
    (CPU results stay exactly what they were)."""
    if spec.get("fused") != "auto":
        return spec
    spec = {k: v for k, v in spec.items() if k != "fused"}
    if device_type == "cuda" and spec.get("_target_") in FUSED_OPTIMIZERS:
        spec["fused"] = True
    return spec


def _warmup_factor(step: int, warmup_steps: int) -> float:
    return (step + 1) / warmup_steps if warmup_steps > 0 and step < warmup_steps else 1.0


def run_progress(step: int, total_steps: int, time_fraction: TimeFraction | None, start: int = 0) -> float:
    """How far through the run (0 to 1) step ``step`` is: by steps after ``start``, or by time if further."""
    progress = (step - start) / max(1, total_steps - start)
    if time_fraction is not None:
        progress = max(progress, time_fraction())
    return min(1.0, max(0.0, progress))


def cosine_with_warmup(
    optimizer: Optimizer,
    total_steps: int,
    warmup_steps: int = 0,
    min_lr_ratio: float = 0.0,
    time_fraction: TimeFraction | None = None,
) -> LambdaLR:
    """Linear warmup over ``warmup_steps``, then cosine decay to ``min_lr_ratio * lr`` at ``total_steps`` (or at
    the end of the time budget, whichever comes first)."""
    if not 0 <= warmup_steps < max(total_steps, 1):
        raise ValueError(f"scheduler.warmup_steps={warmup_steps} must be in [0, total_steps={total_steps})")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return _warmup_factor(step, warmup_steps)
        progress = run_progress(step, total_steps, time_fraction, start=warmup_steps)
        return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


def step_decay(
    optimizer: Optimizer, total_steps: int, step_size: int, gamma: float = 0.5, warmup_steps: int = 0
) -> LambdaLR:
    """Multiply the rate by ``gamma`` every ``step_size`` iterations (after an optional warmup)."""
    if step_size < 1:
        raise ValueError(f"scheduler.step_size must be >= 1, got {step_size}")
    return LambdaLR(optimizer, lambda step: _warmup_factor(step, warmup_steps) * gamma ** (step // step_size))


def constant(optimizer: Optimizer, total_steps: int, warmup_steps: int = 0) -> LambdaLR:
    """A fixed rate, with an optional linear warmup."""
    return LambdaLR(optimizer, lambda step: _warmup_factor(step, warmup_steps))


def exponential_decay(
    optimizer: Optimizer,
    total_steps: int,
    final_lr_ratio: float = 0.1,
    warmup_steps: int = 0,
    time_fraction: TimeFraction | None = None,
) -> LambdaLR:
    """Decay the rate exponentially to ``final_lr_ratio * lr`` at ``total_steps`` (MWCNN: 1e-3 -> 1e-4)."""
    if not 0 < final_lr_ratio <= 1:
        raise ValueError(f"scheduler.final_lr_ratio must be in (0, 1], got {final_lr_ratio}")

    def factor(step: int) -> float:
        return _warmup_factor(step, warmup_steps) * final_lr_ratio ** run_progress(step, total_steps, time_fraction)

    return LambdaLR(optimizer, factor)


def piecewise(
    optimizer: Optimizer,
    total_steps: int,
    milestones: list[float],
    ratios: list[float],
    warmup_steps: int = 0,
    time_fraction: TimeFraction | None = None,
) -> LambdaLR:
    """``lr * ratios[i]`` from ``milestones[i]`` on; milestones are fractions of the run (0.5 = halfway), so a
    published schedule in epochs keeps its shape at any run length (PRIDNet: 1e-4, 5e-5 after 1500 of 4000...)."""
    if len(milestones) != len(ratios) or list(milestones) != sorted(milestones):
        raise ValueError(
            f"scheduler.milestones {milestones} must be increasing and as many as scheduler.ratios {ratios}"
        )
    bounds = [int(m * total_steps) for m in milestones]

    def factor(step: int) -> float:
        spent = time_fraction() if time_fraction is not None else 0.0
        passed = sum(step >= b or spent >= m for b, m in zip(bounds, milestones, strict=True))
        return _warmup_factor(step, warmup_steps) * (ratios[passed - 1] if passed else 1.0)

    return LambdaLR(optimizer, factor)
