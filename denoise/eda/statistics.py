"""The numbers of the EDA, accumulated one pair at a time in fixed-size sums: per-pair noise, counts per
category, variance against intensity per camera/ISO group and its ``var = a x + b`` fit."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from denoise.eda.streaming import CATEGORY_FIELDS, Sample


def group_of(sample: Sample) -> str:
    """``camera / ISO`` when known (the dataset stands in for an unnamed camera), else the dataset: the unit
    of one noise model."""
    camera = str(sample.meta.get("camera", sample.dataset))
    return f"{camera} / ISO {sample.meta['iso']}" if "iso" in sample.meta else camera


# -- accumulating ------------------------------------------------------------------------------------------
class NoiseStats:
    """Bounded-memory sums over every pixel of a group: residual moments per clean-intensity bin and a
    residual histogram. Memory is O(bins), whatever the number or size of the images."""

    def __init__(self, bins: int, hist_range: float, hist_bins: int) -> None:
        self.bins, self.hist_range, self.hist_bins = bins, hist_range, hist_bins
        self.count = np.zeros(bins)
        self.sum = np.zeros(bins)
        self.sum_sq = np.zeros(bins)
        self.sum_x = np.zeros(bins)
        self.hist = np.zeros(hist_bins)
        self.outside = 0
        self.pixels = 0
        self.total_sq = 0.0

    def add(self, clean: np.ndarray, residual: np.ndarray) -> None:
        """Accumulate one chunk of pixels (any shape; ``clean`` and ``residual`` alike)."""
        x = clean.reshape(-1).astype(np.float64, copy=False)
        r = residual.reshape(-1).astype(np.float64, copy=False)
        index = np.clip((x * self.bins).astype(np.int64), 0, self.bins - 1)
        self.count += np.bincount(index, minlength=self.bins)
        self.sum += np.bincount(index, weights=r, minlength=self.bins)
        self.sum_sq += np.bincount(index, weights=r * r, minlength=self.bins)
        self.sum_x += np.bincount(index, weights=x, minlength=self.bins)
        hist, _ = np.histogram(r, bins=self.hist_bins, range=(-self.hist_range, self.hist_range))
        self.hist += hist
        self.outside += int(r.size - hist.sum())
        self.pixels += r.size
        self.total_sq += float((r * r).sum())

    def binned(self, min_pixels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(mean intensity, residual variance, pixel count)`` of the bins holding at least ``min_pixels``."""
        keep = self.count >= max(2, min_pixels)
        n = self.count[keep]
        mean = self.sum[keep] / n
        variance = (self.sum_sq[keep] - n * mean * mean) / (n - 1)
        return self.sum_x[keep] / n, variance, n

    @property
    def std(self) -> float:
        return math.sqrt(self.total_sq / self.pixels) if self.pixels else float("nan")


def fit_poisson_gaussian(
    x: np.ndarray, variance: np.ndarray, weights: np.ndarray, fit_range: Sequence[float] = (0.02, 0.98)
) -> dict[str, float] | None:
    """Least-squares ``var = a * x + b`` over the bins inside ``fit_range`` (clipping near 0 and 1 bends the
    curve), weighted by pixel count. ``None`` with fewer than 3 usable bins."""
    low, high = fit_range
    keep = (x >= low) & (x <= high)
    if keep.sum() < 3:
        return None
    x, v, w = x[keep], variance[keep], weights[keep]
    design = np.stack([x, np.ones_like(x)], axis=1) * np.sqrt(w)[:, None]
    (a, b), *_ = np.linalg.lstsq(design, v * np.sqrt(w), rcond=None)
    predicted = a * x + b
    residual = float(np.sum(w * (v - predicted) ** 2))
    total = float(np.sum(w * (v - np.average(v, weights=w)) ** 2)) or 1.0
    return {"a": float(a), "b": float(b), "r2": 1.0 - residual / total, "bins": int(keep.sum())}


@dataclass
class Analysis:
    """Everything the report shows, built up one pair at a time."""

    bins: int = 32
    hist_range: float = 0.25
    hist_bins: int = 101
    pairs: list[dict[str, Any]] = field(default_factory=list)
    # dataset -> category -> value -> pairs (categories mean different things in different datasets)
    counts: dict[str, dict[str, Counter]] = field(default_factory=dict)
    sizes: Counter = field(default_factory=Counter)
    groups: dict[str, NoiseStats] = field(default_factory=dict)

    def add(self, sample: Sample, chunk_values: int = 1 << 18) -> None:
        """Add one pair, in chunks of rows (about ``chunk_values`` values each), so the working memory beyond the
        pair itself stays a few MB whatever the photo's size."""
        height, width, channels = sample.clean.shape
        group = group_of(sample)
        stats = self.groups.setdefault(group, NoiseStats(self.bins, self.hist_range, self.hist_bins))
        sums, squares, clipped_error, brightness = np.zeros(channels), np.zeros(channels), 0.0, 0.0
        rows = max(1, chunk_values // (width * channels))
        for top in range(0, height, rows):
            clean = sample.clean[top : top + rows].astype(np.float64)
            noisy = sample.noisy[top : top + rows].astype(np.float64)
            residual = noisy - clean
            flat = residual.reshape(-1, channels)
            sums += flat.sum(axis=0)
            squares += (flat * flat).sum(axis=0)
            clipped_error += float(((np.clip(noisy, 0, 1) - clean) ** 2).sum())
            brightness += float(clean.sum())
            stats.add(clean, residual)
        n = height * width
        std = np.sqrt(np.maximum(squares / n - (sums / n) ** 2, 0.0))
        mse = clipped_error / (n * channels)
        self.pairs.append(
            {
                "name": sample.name,
                "dataset": sample.dataset,
                "group": group,
                **sample.meta,
                "height": height,
                "width": width,
                "noise_std": [float(v) for v in std],
                "noise_std_mean": float(np.sqrt(np.mean(std**2))),
                "psnr_noisy": float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse),
                "brightness": brightness / (n * channels),
            }
        )
        for key in CATEGORY_FIELDS:
            if key in sample.meta:
                self.counts.setdefault(sample.dataset, {}).setdefault(key, Counter())[str(sample.meta[key])] += 1
        self.counts.setdefault(sample.dataset, {}).setdefault("pairs", Counter())["all"] += 1
        self.sizes[f"{height}x{width}"] += 1

    def fits(self, min_pixels: int, fit_range: Sequence[float]) -> dict[str, dict[str, Any]]:
        out = {}
        for group, stats in sorted(self.groups.items()):
            x, variance, n = stats.binned(min_pixels)
            fit = fit_poisson_gaussian(x, variance, n, fit_range)
            out[group] = {
                "pixels": stats.pixels,
                "std": stats.std,
                "fit": fit,
                "bins": {"intensity": x.tolist(), "variance": variance.tolist(), "pixels": n.tolist()},
            }
        return out


def analyze(samples: Iterator[Sample], total: int, bins: int = 32, progress: bool = True, **kwargs: Any) -> Analysis:
    """Feed every sample through an :class:`Analysis` under a progress bar (plain lines without a terminal),
    keeping none of them."""
    import logging

    from denoise.data.console import Steps

    analysis = Analysis(bins=bins, **kwargs)
    with Steps("EDA", total, "pairs", emit=logging.getLogger(__name__).info, enabled=progress) as bar:
        for sample in samples:
            analysis.add(sample)
            bar.advance(1, getattr(sample, "name", None))
    return analysis


# -- plots -------------------------------------------------------------------------------------------------
