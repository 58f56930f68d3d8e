"""Numerical precision of evaluation, so that a score does not depend on the GPU or on the training precision.

Two settings change float32 results on a GPU without being asked for: cuDNN runs float32 convolutions in TF32
(a 10-bit mantissa) on Ampere and newer cards by default, and Lightning runs the validation and test steps
inside the training precision's autocast (bf16 or fp16). Both moved SSIM, whose ``E[x²] - E[x]²`` cancels
badly, by up to 0.25 on an H200. Metrics therefore always run under :func:`exact_float`; networks run
under :func:`evaluation_precision`, full float32 (IEEE, no TF32) unless a user asks for bf16 speed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import torch

#: how networks run at evaluation time (validation, test, evaluate.py, denoise-predict): ``inference.precision``
EVAL_PRECISIONS = ("fp32", "bf16", "fp16")
_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str, key: str = "inference.precision") -> str:
    """``precision`` if it is one of :data:`EVAL_PRECISIONS`, else an error naming ``key``."""
    if precision not in EVAL_PRECISIONS:
        raise ValueError(f"{key}={precision!r} is unknown; expected one of {list(EVAL_PRECISIONS)}")
    return precision


def _tf32_switches() -> list[tuple[object, str, object]]:
    """(object, attribute, IEEE value) of each TF32 switch: PyTorch >= 2.9 spells them ``fp32_precision``."""
    cudnn_conv = getattr(torch.backends.cudnn, "conv", None)
    if cudnn_conv is not None and hasattr(cudnn_conv, "fp32_precision"):
        return [(cudnn_conv, "fp32_precision", "ieee"), (torch.backends.cuda.matmul, "fp32_precision", "ieee")]
    return [(torch.backends.cudnn, "allow_tf32", False), (torch.backends.cuda.matmul, "allow_tf32", False)]


@contextmanager
def ieee_float32() -> Iterator[None]:
    """Float32 convolutions and matrix products in IEEE float32 (TF32 off) inside the block, then as before."""
    switches = _tf32_switches()
    saved = [getattr(owner, name) for owner, name, _ in switches]
    try:
        for owner, name, value in switches:
            setattr(owner, name, value)
        yield
    finally:
        for (owner, name, _), value in zip(switches, saved, strict=True):
            setattr(owner, name, value)


@contextmanager
def exact_float(device_type: str) -> Iterator[None]:
    """No autocast and no TF32: what every metric runs under, whatever the surrounding training precision."""
    with torch.autocast(device_type, enabled=False), ieee_float32():
        yield


@contextmanager
def evaluation_precision(precision: str, device_type: str) -> Iterator[None]:
    """``fp32``: full IEEE float32 whatever autocast surrounds the call; ``bf16``/``fp16``: autocast in that type
    (faster on tensor-core GPUs; the scores then say so)."""
    check_precision(precision)
    with ExitStack() as stack:
        if precision == "fp32":
            stack.enter_context(exact_float(device_type))
        else:
            stack.enter_context(torch.autocast(device_type, dtype=_AUTOCAST_DTYPES[precision]))
        yield
