"""Stop training on a non-finite loss without stalling the GPU every step.

Asking ``bool(torch.isfinite(loss))`` each step copies the loss to the host, so the CPU waits for the GPU's
whole queue before it can launch the next step: 1.3x slower training on an H200 for DnCNN. Instead the first
non-finite step is remembered on the device (a few tiny kernels, no copy) and read where the host waits
anyway: at logging steps, at the end of every epoch and before every validation, that is, before every
checkpoint that ModelCheckpoint writes. The weights after a non-finite step are not finite; they are never
saved, since :meth:`FiniteLossGuard.refuse_non_finite` also inspects every checkpoint before it is written.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch

ADVICE = "Try a lower model.optimizer.lr, trainer.gradient_clip_val=1.0, or trainer.precision=32 if fp16 overflowed"


class FiniteLossGuard:
    """The first training step whose loss was NaN or infinite, kept on the loss's device until asked."""

    def __init__(self) -> None:
        self._step: torch.Tensor | None = None  # -1: every loss so far was finite
        self._value: torch.Tensor | None = None
        self._positions: dict[int, tuple[int, int]] = {}  # global step -> (epoch, batch) since the last check

    def record(self, loss: torch.Tensor, step: int, epoch: int, batch: int) -> None:
        """Note ``loss`` of global step ``step``: device-side only, no host synchronisation."""
        loss = loss.detach().to(torch.float64)
        if self._step is None or self._step.device != loss.device:
            self._step = torch.full((), -1.0, dtype=torch.float64, device=loss.device)
            self._value = torch.zeros((), dtype=torch.float64, device=loss.device)
        first = ~torch.isfinite(loss) & (self._step < 0)
        self._step = torch.where(first, float(step), self._step)
        self._value = torch.where(first, loss, self._value)
        self._positions[step] = (epoch, batch)

    def packed(self) -> dict[str, torch.Tensor]:
        """The record as device scalars (``guard/step`` -1 while every loss was finite), for a copy to the host
        that does not wait (:class:`denoise.training.step_log.StepScalars`); empty before the first record."""
        if self._step is None or self._value is None:
            return {}
        return {"guard/step": self._step, "guard/value": self._value}

    def raise_for(self, step: float, value: float, where: str, rank: int | None = None) -> None:
        """Stop training: the loss of global step ``step`` was ``value`` (not finite)."""
        epoch, batch = self._positions.get(int(step), ("?", "?"))  # DDP ranks step together: same positions
        on_rank = f" on rank {rank}" if rank is not None else ""
        raise FloatingPointError(
            f"training stopped: the loss is not finite ({_number(value)}) at global step {int(step)} "
            f"(epoch {epoch}, batch {batch}){on_rank}, noticed at {where}. The weights after that step are not "
            f"finite and were not saved; the checkpoints saved before it are kept. {ADVICE}"
        )

    def check(self, where: str, all_gather: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        """Raise FloatingPointError naming the first bad step (over every rank when ``all_gather`` is given:
        each rank must call this at the same point). ``where`` says when it was noticed."""
        if self._step is None:
            return
        packed = torch.stack((self._step, self._value))
        gathered = all_gather(packed).reshape(-1, 2) if all_gather is not None else packed[None]
        bad = [(step, value, rank) for rank, (step, value) in enumerate(gathered.cpu().tolist()) if step >= 0]
        if not bad:
            self._positions.clear()
            return
        step, value, rank = min(bad)
        self.raise_for(step, value, where, rank if all_gather is not None else None)

    @staticmethod
    def refuse_non_finite(state_dict: Mapping[str, Any], step: int) -> None:
        """Raise instead of letting a checkpoint with NaN/inf weights reach the disk (one host sync per save)."""
        names = [k for k, v in state_dict.items() if torch.is_tensor(v) and v.is_floating_point() and v.numel()]
        if not names:
            return
        finite = torch.stack([torch.isfinite(state_dict[k]).all() for k in names]).cpu().tolist()
        bad = [name for name, ok in zip(names, finite, strict=True) if not ok]
        if bad:
            raise FloatingPointError(
                f"training stopped at global step {step}: the weights are not finite ({', '.join(bad[:3])}"
                f"{', ...' if len(bad) > 3 else ''}), so no checkpoint was written; the checkpoints saved before "
                f"are kept. {ADVICE}"
            )


def _number(value: float) -> str:
    return "nan" if math.isnan(value) else str(value)
