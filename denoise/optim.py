"""Learning-rate schedules stepped once per optimizer step (not per epoch).

Each factory takes the optimizer and the run's ``total_steps`` (Lightning's ``estimated_stepping_batches``),
so a schedule fits any epoch count or dataset size. Configs name them as Hydra partials in
``conf/scheduler/``.
"""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def _warmup_factor(step: int, warmup_steps: int) -> float:
    return (step + 1) / warmup_steps if warmup_steps > 0 and step < warmup_steps else 1.0


def cosine_with_warmup(
    optimizer: Optimizer, total_steps: int, warmup_steps: int = 0, min_lr_ratio: float = 0.0
) -> LambdaLR:
    """Linear warmup over ``warmup_steps``, then cosine decay to ``min_lr_ratio * lr`` at ``total_steps``."""
    if not 0 <= warmup_steps < max(total_steps, 1):
        raise ValueError(f"scheduler.warmup_steps={warmup_steps} must be in [0, total_steps={total_steps})")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return _warmup_factor(step, warmup_steps)
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
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
