"""The EDA's PNG plots: counts, per-pair noise, the fitted noise model, residual histograms, a sample grid."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from denoise.eda.statistics import NoiseStats
from denoise.eda.streaming import CATEGORY_LABELS, Sample
from denoise.evaluation.report import pyplot, save_figure, zoom_box


def _panels(count: int, width: float, height: float, columns: int = 3) -> tuple[Any, Any, list[Any]]:
    """A figure of ``count`` panels, ``columns`` to a row: (pyplot, figure, the axes in order)."""
    plt = pyplot()
    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False)
    return plt, fig, list(axes.flat)


def _save(plt: Any, fig: Any, axes: list[Any], used: int, path: Path, dpi: int = 110) -> Path:
    """Blank the unused panels, save the figure as PNG, free it."""
    for ax in axes[used:]:
        ax.axis("off")
    fig.tight_layout()
    save_figure(fig, path, dpi=dpi)
    plt.close(fig)
    return path


def sort_key(value: str) -> tuple[int, float | str]:
    try:
        return (0, float(value))
    except ValueError:
        return (1, value)


def plot_counts(path: Path, counts: Mapping[str, Mapping[str, Counter]], sizes: Counter) -> Path:
    """One bar chart per dataset and category (and one of image sizes)."""
    several = len(counts) > 1
    panels = [
        (
            f"{dataset}: pairs per {CATEGORY_LABELS.get(key, key)}"
            if several
            else f"pairs per {CATEGORY_LABELS.get(key, key)}",
            c,
        )
        for dataset, fields in counts.items()
        for key, c in fields.items()
        if key != "pairs"
    ]
    if several:
        panels.insert(0, ("pairs per dataset", Counter({d: f["pairs"]["all"] for d, f in counts.items()})))
    panels.append(("pairs per image size", sizes))
    plt, fig, axes = _panels(len(panels), 5, 3.4)
    for ax, (title, counter) in zip(axes, panels, strict=False):
        keys = sorted(counter, key=sort_key)
        ax.bar(range(len(keys)), [counter[k] for k in keys], color="#4c72b0")
        ax.set_xticks(range(len(keys)), keys, rotation=45 if len(keys) > 4 else 0, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("pairs")
    return _save(plt, fig, axes, len(panels), path)


def plot_per_pair(path: Path, pairs: Sequence[Mapping[str, Any]]) -> Path:
    """Noise std against the noisy input's PSNR per pair, and std per ISO as box plots per camera."""
    plt = pyplot()
    cameras = sorted({str(p.get("camera", p["dataset"])) for p in pairs})
    with_iso = [p for p in pairs if "iso" in p]
    fig, axes = plt.subplots(1, 2 if with_iso else 1, figsize=(12 if with_iso else 6, 4), squeeze=False)
    ax = axes[0, 0]
    for camera in cameras:
        members = [p for p in pairs if str(p.get("camera", p["dataset"])) == camera]
        ax.scatter([p["psnr_noisy"] for p in members], [255 * p["noise_std_mean"] for p in members], s=14, label=camera)
    ax.set_xlabel("noisy input PSNR (dB)")
    ax.set_ylabel("noise std (0-255)")
    ax.set_title("per pair")
    ax.legend(fontsize=7)
    if with_iso:
        ax = axes[0, 1]
        labels, data = [], []
        for camera in cameras:
            isos = sorted(
                {str(p["iso"]) for p in with_iso if str(p.get("camera", p["dataset"])) == camera}, key=sort_key
            )
            for iso in isos:
                values = [
                    255 * p["noise_std_mean"]
                    for p in with_iso
                    if str(p.get("camera", p["dataset"])) == camera and str(p["iso"]) == iso
                ]
                labels.append(f"{camera}\nISO {iso}")
                data.append(values)
        ax.boxplot(data)
        ax.set_xticks(range(1, len(labels) + 1), labels, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("noise std (0-255)")
        ax.set_title("noise std against ISO, per camera")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path


def plot_noise_model(path: Path, fits: Mapping[str, Mapping[str, Any]], max_groups: int = 12) -> Path:
    """Residual variance against clean intensity per group, the fitted ``a x + b`` drawn over the points."""
    groups = list(fits)[:max_groups]
    plt, fig, axes = _panels(len(groups), 4.6, 3.4)
    for ax, group in zip(axes, groups, strict=False):
        entry = fits[group]
        x, v = np.asarray(entry["bins"]["intensity"]), np.asarray(entry["bins"]["variance"])
        ax.scatter(x, v, s=12, color="#4c72b0", label="measured")
        fit = entry["fit"]
        if fit is not None:
            grid = np.linspace(0, 1, 50)
            ax.plot(grid, fit["a"] * grid + fit["b"], color="#c44e52", label=f"a={fit['a']:.2e}, b={fit['b']:.2e}")
        ax.set_ylim(0, 1.25 * max(float(v.max()) if v.size else 0.0, 1e-8))
        ax.set_xlim(0, 1)
        ax.set_title(group, fontsize=9)
        ax.set_xlabel("clean intensity")
        ax.set_ylabel("residual variance")
        ax.legend(fontsize=7)
    return _save(plt, fig, axes, len(groups), path)


def plot_histograms(path: Path, groups: Mapping[str, NoiseStats], max_groups: int = 12) -> Path:
    """Each group's residual histogram (density, log scale) against the Gaussian of its std."""
    names = sorted(groups)[:max_groups]
    plt, fig, axes = _panels(len(names), 4.6, 3.2)
    for ax, name in zip(axes, names, strict=False):
        stats = groups[name]
        edges = np.linspace(-stats.hist_range, stats.hist_range, stats.hist_bins + 1)
        centers, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
        density = stats.hist / max(1, stats.pixels) / width
        ax.bar(centers, density, width=width, color="#4c72b0", alpha=0.7, label="residual")
        sigma = stats.std
        gauss = np.exp(-(centers**2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))
        ax.plot(centers, gauss, color="#c44e52", label=f"N(0, {255 * sigma:.2f}/255)")
        ax.set_yscale("log")
        ax.set_ylim(bottom=max(density[density > 0].min(initial=1e-3), 1e-3) if density.any() else 1e-3)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("noisy - clean")
        ax.legend(fontsize=7)
    return _save(plt, fig, axes, len(names), path)


def plot_samples(path: Path, samples: Sequence[Sample], crop: int = 96) -> Path:
    """A row per pair: noisy and clean (the zoom box drawn), then the zoomed noisy, clean and residual."""
    plt = pyplot()
    fig, axes = plt.subplots(len(samples), 5, figsize=(15, 3.1 * len(samples)), squeeze=False)
    for row, sample in zip(axes, samples, strict=True):
        top, left, size = zoom_box(sample.clean, crop)
        window = (slice(top, top + size), slice(left, left + size))
        residual = sample.noisy[window] - sample.clean[window]
        spread = max(float(np.abs(residual).max()), 1e-6)
        panels = [
            ("noisy", np.clip(sample.noisy, 0, 1)),
            ("clean", sample.clean),
            ("noisy, zoomed", np.clip(sample.noisy[window], 0, 1)),
            ("clean, zoomed", sample.clean[window]),
            ("noisy - clean, zoomed", 0.5 + 0.5 * residual / spread),
        ]
        for ax, (title, image) in zip(row, panels, strict=True):
            ax.imshow(image.squeeze(-1) if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"{sample.name}: {title}" if title == "noisy" else title, fontsize=8)
            ax.axis("off")
        for ax in row[:2]:
            ax.add_patch(plt.Rectangle((left, top), size, size, fill=False, edgecolor="#ffcc00", linewidth=1.5))
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)
    return path
