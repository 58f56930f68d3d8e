"""Devices: which one runs, what it is called in a benchmark's JSON, waiting for it, and where a network is."""

from __future__ import annotations

import torch
from torch import nn


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when available, else CPU; anything else as torch spells it (cpu, cuda, cuda:1)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU and its thread count: what every benchmark's JSON says it measured on."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU): for timings."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_of(net: nn.Module, default: torch.device) -> torch.device:
    """The device of the network's weights (``default`` for a network without any)."""
    parameter = next(iter(net.parameters()), None)
    return parameter.device if parameter is not None else default


def dtype_of(net: nn.Module) -> torch.dtype:
    """The floating type of the network's weights (float32 for a network without any)."""
    parameter = next(iter(net.parameters()), None)
    return parameter.dtype if parameter is not None and parameter.is_floating_point() else torch.float32
