"""Which filters and networks an evaluation compares: the filters asked for (``filters=all`` without an optional
one that is missing), the noise level they are given, and the checkpoints loaded as methods."""

from __future__ import annotations

import logging

import torch
from omegaconf import DictConfig, OmegaConf

from denoise.checkpoint import load_network
from denoise.data.datamodule import DenoiseDataModule
from denoise.evaluation.comparison import Method, model_method, unique_labels
from denoise.inference import Inference, prepare_network, sigma_value

log = logging.getLogger(__name__)


def filter_sigma(cfg: DictConfig, datamodule: DenoiseDataModule) -> float | None:
    """The noise level handed to the filters ([0, 1] scale), or None for a per-image estimate."""
    setting = cfg.get("filter_sigma", "auto")
    if setting in (None, "auto"):
        return datamodule.noise_sigma
    if setting == "estimate":
        return None
    value = sigma_value(setting)
    if value is None:
        raise ValueError(f"filter_sigma={setting!r}: expected auto, estimate, or a number >= 0 on the 0-255 scale")
    return value / 255.0


def filter_names(cfg: DictConfig) -> list[str]:
    """``filters=[bm3d,nlm]`` or ``filters=all``, checked against the configs under ``filter``."""
    chosen = cfg.get("filters") or []
    chosen = [chosen] if isinstance(chosen, str) else [str(name) for name in chosen]
    available = list(cfg.get("filter") or {})
    if "all" in chosen:
        from denoise.config.resolvers import installed
        from denoise.evaluation.filters import (
            FILTER_NAMES,  # here, not at import: train.py never loads bm3d and OpenCV filters
        )

        names = [n for n in FILTER_NAMES if n in available] + [n for n in available if n not in FILTER_NAMES]
        if "bm3d" in names and not installed("bm3d"):  # an extra (non-commercial licence): all = all installed
            log.warning("filters=all without BM3D: the bm3d package is not installed (pip install 'denoise[bm3d]'; "
                        "free for non-commercial use only)")  # fmt: skip
            names.remove("bm3d")
        return names
    for name in chosen:
        if name not in available:
            raise ValueError(f"filters: unknown filter {name!r}; expected names from {available} (conf/filter), or all")
    if "bm3d" in chosen:
        from denoise.config.resolvers import installed

        if not installed("bm3d"):
            raise ValueError("filters=[bm3d] needs the bm3d package, an optional part (free for non-commercial use "
                             "only): pip install 'denoise[bm3d]'")  # fmt: skip
    return list(dict.fromkeys(chosen))


def checkpoint_paths(cfg: DictConfig) -> list[tuple[str, str]]:
    """``(config key, path)`` of ``ckpt_path`` (one) and ``ckpt_paths`` (a list), in that order."""
    paths = [("ckpt_path", str(cfg.ckpt_path))] if cfg.get("ckpt_path") else []
    more = cfg.get("ckpt_paths") or []
    more = [more] if isinstance(more, str) else list(more)
    return paths + [(f"ckpt_paths[{i}]", str(path)) for i, path in enumerate(more)]


def load_models(
    cfg: DictConfig, datamodule: DenoiseDataModule, device: torch.device, settings: Inference
) -> list[Method]:
    """Every checkpoint as a method, checked against the data's channels."""
    net_spec = OmegaConf.to_container(cfg.model.net) if cfg.get("model") else None
    loaded = []
    for key, path in checkpoint_paths(cfg):
        net, spec = load_network(path, net_spec, key=key)
        prepare_network(net, settings, spec.get("in_channels"))  # TLC, when asked for
        channels = spec.get("in_channels")
        if channels is not None and channels != datamodule.channels:
            raise ValueError(
                f"{key}={path} expects {channels}-channel images but the data gives {datamodule.channels}; "
                f"set data.grayscale={'true' if channels == 1 else 'false'}"
            )
        loaded.append((spec["_target_"].rsplit(".", 1)[-1], path, net.to(device)))
    labels = unique_labels([name for name, _, _ in loaded], [path for _, path, _ in loaded])
    return [model_method(label, net, path, settings) for label, (_, path, net) in zip(labels, loaded, strict=True)]
