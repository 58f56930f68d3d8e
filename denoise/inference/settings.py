"""How a network runs on whole images, as one value: :class:`Inference`, like
:class:`denoise.evaluation.metrics.Convention` for scores. One definition of the fields and their defaults;
``conf/inference/default.yaml`` gives the same fields to train.py (validation and test), evaluate.py and
denoise-predict, and the value travels whole from the config to :func:`denoise.inference.denoise_image`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from denoise.inference.precision import check_precision


@dataclass(frozen=True)
class Inference:
    """``tile`` (0: the whole image; else tiles of that many pixels a side) overlapping by ``overlap``, ``tile_batch``
    tiles a forward; ``ensemble``: x8 flips/rotations; ``precision``: fp32 (IEEE float32 on every device), bf16 or
    fp16; ``noise_level`` for networks that take one: auto, known, estimate or a sigma (0-255);
    ``memory_budget_mb``: on the CPU, tile before running to stay within it; ``tlc`` over windows of 1.5 x
    ``tlc_size`` (the training crop)."""

    tile: int = 0
    overlap: int = 32
    ensemble: bool = False
    precision: str = "fp32"
    noise_level: str | float = "auto"
    memory_budget_mb: float | None = None
    tile_batch: int = 1
    tlc: bool = False
    tlc_size: int | None = None

    def __post_init__(self) -> None:
        check_precision(str(self.precision))
        if not isinstance(self.tile, int) or self.tile < 0:
            raise ValueError(f"inference.tile={self.tile!r}: expected an integer >= 0 (0: whole images)")
        if not isinstance(self.overlap, int) or self.overlap < 0:
            raise ValueError(f"inference.overlap={self.overlap!r}: expected an integer >= 0")
        if not isinstance(self.tile_batch, int) or self.tile_batch < 1:
            raise ValueError(f"inference.tile_batch={self.tile_batch!r}: expected an integer >= 1")

    @classmethod
    def of(cls, options: Inference | Mapping[str, Any] | None = None, **overrides: Any) -> Inference:
        """The settings from a config mapping (``cfg.inference``) or another value, with ``overrides``; an unknown
        key is an error naming it."""
        if isinstance(options, Inference):
            values = dataclasses.asdict(options)
        else:
            values = {str(k): v for k, v in dict(options or {}).items()}
        values.update(overrides)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"inference: unknown key(s) {unknown}; expected some of {sorted(known)}")
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for a checkpoint's hyperparameters and results.json."""
        return dataclasses.asdict(self)
