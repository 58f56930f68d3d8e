"""Exploratory data analysis of any dataset: ``python -m denoise.eda data=<config> [data.root=PATH]``.

Streams every noisy/clean pair of the dataset once (one pair in memory at a time) and writes into the run
directory ``eda.md`` with PNG plots and ``eda.json`` with every number:

* counts per category from the dataset's own metadata (SIDD: phone, ISO, shutter, illuminant, brightness;
  RENOIR: camera and batch; NIND: scene and ISO; synthetic data: split) and image sizes;
* per pair, from the residual ``noisy - clean``: noise standard deviation per channel and the noisy input's
  PSNR; noise against ISO per camera as box plots;
* signal-dependent noise: the residual's variance against clean intensity in bins, accumulated per group
  (camera and ISO), and a fitted Poisson-Gaussian model ``var = a * x + b`` per group (Foi et al. 2008);
* residual histograms against the Gaussian of the measured standard deviation, and a grid of sample pairs
  with zoomed crops.

For synthetic data the report sets the configured noise beside the measured one.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from denoise.report import markdown_table, pyplot, write_json, zoom_box

log = logging.getLogger(__name__)

#: metadata fields counted per dataset, in report order (others are ignored)
CATEGORY_FIELDS = ("camera", "iso", "shutter", "temperature", "brightness", "batch", "scene", "split")


@dataclass
class Sample:
    """One pair as float32 ``H x W x C`` arrays in [0, 1], with the fields the report groups by."""

    name: str
    dataset: str
    noisy: np.ndarray
    clean: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)


#: how the report names each category
CATEGORY_LABELS = {
    "camera": "camera",
    "iso": "ISO",
    "shutter": "shutter speed",
    "temperature": "illuminant (K)",
    "brightness": "brightness",
    "batch": "batch",
    "scene": "scene",
    "split": "split",
    "dataset": "dataset",
}


def group_of(sample: Sample) -> str:
    """``camera / ISO`` when known (the dataset stands in for an unnamed camera), else the dataset: the unit
    of one noise model."""
    camera = str(sample.meta.get("camera", sample.dataset))
    return f"{camera} / ISO {sample.meta['iso']}" if "iso" in sample.meta else camera


# -- streaming the pairs -----------------------------------------------------------------------------------
def count_pairs(datamodule: Any) -> int:
    """How many pairs :func:`iter_samples` will yield (for the progress bar), without decoding any."""
    from denoise.data.datamodule import PairedDataModule

    if isinstance(datamodule, PairedDataModule):
        return sum(len(unique_pairs(layout)) for layout in datamodule.layouts.values())
    from denoise.data.synthetic import resolve_files

    return sum(len(resolve_files(datamodule.dirs[split], split)) for split in ("train", "val", "test"))


def unique_pairs(layout: Any) -> list[Any]:
    """Every pair of a layout once, whatever splits it is in (SIDD's val and test are the same pairs)."""
    seen, pairs = set(), []
    for split in ("train", "val", "test"):
        for pair in layout.splits()[split]:
            if pair.noisy not in seen:
                seen.add(pair.noisy)
                pairs.append(pair)
    return pairs


def iter_samples(datamodule: Any) -> Iterator[Sample]:
    """Every pair of a data module, decoded one at a time: real pairs as their layout names them, synthetic
    ones with the noise a run would draw for that image (its fixed per-image seed)."""
    from denoise.data.datamodule import PairedDataModule

    if isinstance(datamodule, PairedDataModule):
        from denoise.data.pairs import load_pair

        for name, layout in datamodule.layouts.items():
            for pair in unique_pairs(layout):
                noisy, clean = load_pair(pair, datamodule.channels, datamodule.resize)
                meta = {k: v for k, v in pair.meta.items() if k in CATEGORY_FIELDS}
                yield Sample(pair.name, name, noisy, clean, meta)
        return

    from denoise.data.io import read_raw, to_channels
    from denoise.data.synthetic import NoisyImages, resolve_files

    for split in ("train", "val", "test"):
        for path in resolve_files(datamodule.dirs[split], split):
            # the evaluation dataset of one image: the same per-image noise seed as every run
            image = to_channels(read_raw(path), datamodule.channels, path)
            item = NoisyImages([image], [path.name], datamodule.noise, seed=datamodule.seed)[0]
            noisy, clean = (item[key].permute(1, 2, 0).numpy() for key in ("noisy", "clean"))
            yield Sample(f"{split}/{path.name}", "synthetic", noisy, clean, {"split": split})


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
    """Feed every sample through an :class:`Analysis` under a progress bar, keeping none of them."""
    from rich.progress import Progress

    analysis = Analysis(bins=bins, **kwargs)
    with Progress(disable=not progress) as bar:
        task = bar.add_task("pairs", total=total)
        for sample in samples:
            analysis.add(sample)
            bar.advance(task)
    return analysis


# -- plots -------------------------------------------------------------------------------------------------
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
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def _sort_key(value: str) -> tuple[int, float | str]:
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
        keys = sorted(counter, key=_sort_key)
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
                {str(p["iso"]) for p in with_iso if str(p.get("camera", p["dataset"])) == camera}, key=_sort_key
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
    fig.savefig(path, dpi=110)
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
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# -- the report --------------------------------------------------------------------------------------------
def configured_noise(datamodule: Any) -> dict[str, Any] | None:
    """The synthetic noise as configured (levels on the 0-255 scale), or None for real pairs."""
    noise = getattr(datamodule, "noise_config", None)
    return dict(noise) if noise is not None else None


def _num(value: float | None) -> str:
    """Four significant digits: noise parameters span 1e-6 to 1e2."""
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4g}"


def expected_fit(noise: Mapping[str, Any]) -> dict[str, float] | None:
    """``a`` and ``b`` that a fixed-level configured noise implies (None for a blind range)."""

    def fixed(value: Any) -> float | None:
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, Sequence) and len(value) == 2 and value[0] == value[1]:
            return float(value[0])
        return None

    sigma = fixed(noise.get("sigma", 0.0))
    if sigma is None:
        return None
    if noise.get("type") == "poisson_gaussian":
        a = fixed(noise.get("a"))
        return None if a is None else {"a": a, "b": (sigma / 255) ** 2, "std": float("nan")}  # std: image-dependent
    return {"a": 0.0, "b": (sigma / 255) ** 2, "std": sigma / 255}


def write_report(
    out: Path,
    analysis: Analysis,
    samples: Sequence[Sample],
    title: str,
    noise: Mapping[str, Any] | None = None,
    min_bin_pixels: int = 200,
    fit_range: Sequence[float] = (0.02, 0.98),
    max_groups: int = 12,
) -> dict[str, Any]:
    """Write ``eda.md`` (tables + PNG plots) and ``eda.json`` (every number) into ``out``; return the JSON."""
    out.mkdir(parents=True, exist_ok=True)
    if not analysis.pairs:
        raise ValueError("the dataset holds no pairs to analyze")
    fits = analysis.fits(min_bin_pixels, fit_range)
    pictures = {
        "counts": plot_counts(out / "eda_counts.png", analysis.counts, analysis.sizes),
        "per_pair": plot_per_pair(out / "eda_per_pair.png", analysis.pairs),
        "noise_model": plot_noise_model(out / "eda_noise_model.png", fits, max_groups),
        "histograms": plot_histograms(out / "eda_histograms.png", analysis.groups, max_groups),
    }
    if samples:
        pictures["samples"] = plot_samples(out / "eda_samples.png", samples)

    psnr = np.array([p["psnr_noisy"] for p in analysis.pairs])
    std = np.array([p["noise_std_mean"] for p in analysis.pairs])
    summary = {
        "pairs": len(analysis.pairs),
        "psnr_noisy_mean": float(psnr[np.isfinite(psnr)].mean()) if np.isfinite(psnr).any() else None,
        "noise_std_mean": float(std.mean()),
    }
    report: dict[str, Any] = {
        "title": title,
        "summary": summary,
        "counts": {
            dataset: {
                key: dict(sorted(c.items(), key=lambda kv: _sort_key(kv[0]))) if key != "pairs" else c["all"]
                for key, c in fields.items()
            }
            for dataset, fields in analysis.counts.items()
        },
        "sizes": dict(analysis.sizes),
        "pairs": analysis.pairs,
        "groups": fits,
        "pictures": {k: p.name for k, p in pictures.items()},
    }
    fit_rows = [
        {
            "group": group,
            "pixels": entry["pixels"],
            "std (0-255)": _num(255 * entry["std"]),
            "a": _num(entry["fit"]["a"]) if entry["fit"] else "-",
            "b": _num(entry["fit"]["b"]) if entry["fit"] else "-",
            "sqrt(b) (0-255)": _num(255 * math.sqrt(max(entry["fit"]["b"], 0.0))) if entry["fit"] else "-",
            "R²": _num(entry["fit"]["r2"]) if entry["fit"] else "-",
            "bins fitted": entry["fit"]["bins"] if entry["fit"] else 0,
        }
        for group, entry in fits.items()
    ]
    lines = [
        f"# Exploratory data analysis: {title}",
        "",
        f"{summary['pairs']} pairs; per pair on average: noisy-input PSNR {summary['psnr_noisy_mean']:.2f} dB, "
        f"residual std {255 * summary['noise_std_mean']:.2f} (0-255 scale). Every number is also in `eda.json`.",
        "",
        "## Counts",
        "",
        *[
            "; ".join(
                [f"- **{dataset}**: {fields['pairs']} pairs"]
                + [
                    f"per {CATEGORY_LABELS.get(key, key)}: " + ", ".join(f"{k} ({v})" for k, v in counts.items())
                    for key, counts in fields.items()
                    if key != "pairs"
                ]
            )
            for dataset, fields in report["counts"].items()
        ],
        "- **image size**: " + ", ".join(f"{k} ({v})" for k, v in analysis.sizes.most_common()),
        "",
        f"![counts]({pictures['counts'].name})",
        "",
        "## Noise per pair",
        "",
        f"![per pair]({pictures['per_pair'].name})",
        "",
    ]
    if noise is not None:
        expected = expected_fit(noise)
        measured = fits.get("synthetic")
        report["configured_noise"] = dict(noise)
        report["expected_noise"] = expected
        fit = measured["fit"] if measured else None
        rows = [
            {
                "quantity": "noise std (0-255)",
                "from the configuration": _num(255 * expected["std"]) if expected else "-",
                "measured": _num(255 * measured["std"]) if measured else "-",
            },
            {
                "quantity": "a",
                "from the configuration": _num(expected["a"]) if expected else "-",
                "measured": _num(fit["a"]) if fit else "-",
            },
            {
                "quantity": "b",
                "from the configuration": _num(expected["b"]) if expected else "-",
                "measured": _num(fit["b"]) if fit else "-",
            },
        ]
        setting = ", ".join(f"{k}={v}" for k, v in noise.items())
        lines += [
            "## Configured against measured noise",
            "",
            f"Configured: `{setting}` (levels on the 0-255 scale; `a` and `b` of var = a * x + b on the 0-1 scale).",
            "",
            markdown_table(rows, list(rows[0])),
            "",
        ]
    lines += [
        "## Signal-dependent noise: var = a * x + b",
        "",
        f"Residual variance against clean intensity in {analysis.bins} bins, fitted by least squares "
        f"(weighted by pixel count) over intensities {fit_range[0]}-{fit_range[1]}, per group.",
        "",
        markdown_table(fit_rows, list(fit_rows[0])) if fit_rows else "",
        f"![noise model]({pictures['noise_model'].name})",
        "",
        "## Residual histograms",
        "",
        f"![histograms]({pictures['histograms'].name})",
        "",
    ]
    if "samples" in pictures:
        lines += ["## Samples", "", f"![samples]({pictures['samples'].name})", ""]
    pair_rows = [
        {
            "pair": p["name"],
            "group": p["group"],
            "size": f"{p['height']}x{p['width']}",
            "std (0-255)": ", ".join(f"{255 * s:.2f}" for s in p["noise_std"]),
            "PSNR noisy": p["psnr_noisy"],
            "brightness": p["brightness"],
        }
        for p in sorted(analysis.pairs, key=lambda p: (p["dataset"], p["name"]))
    ]
    lines += ["## Every pair", "", markdown_table(pair_rows, list(pair_rows[0]))]
    (out / "eda.md").write_text("\n".join(lines) + "\n")
    write_json(out / "eda.json", report)
    return report


def run(datamodule: Any, out: Path, title: str, options: Mapping[str, Any], progress: bool = True) -> dict[str, Any]:
    """The whole EDA of one data module into ``out`` (``options``: the ``eda`` config block)."""
    max_pairs = options.get("max_pairs")
    total = count_pairs(datamodule)
    if max_pairs is not None:
        total = min(total, int(max_pairs))
    grid = int(options.get("grid_samples", 4))
    picks = set(np.linspace(0, max(total - 1, 0), num=min(grid, total), dtype=int).tolist()) if grid else set()
    kept: list[Sample] = []

    def stream() -> Iterator[Sample]:
        for index, sample in enumerate(iter_samples(datamodule)):
            if index >= total:
                return
            if index in picks:  # a few pairs for the picture grid, shrunk to bound memory
                kept.append(thumbnail(sample, int(options.get("grid_size", 512))))
            yield sample

    analysis = analyze(
        stream(),
        total,
        bins=int(options.get("bins", 32)),
        progress=progress,
        hist_range=float(options.get("hist_range", 0.25)),
        hist_bins=int(options.get("hist_bins", 101)),
    )
    return write_report(
        out,
        analysis,
        kept,
        title,
        noise=configured_noise(datamodule),
        min_bin_pixels=int(options.get("min_bin_pixels", 200)),
        fit_range=tuple(options.get("fit_range", (0.02, 0.98))),
        max_groups=int(options.get("max_groups", 12)),
    )


def thumbnail(sample: Sample, size: int) -> Sample:
    """The central ``size x size`` region of a pair (the grid shows detail, not the whole photo)."""
    height, width = sample.clean.shape[:2]
    top, left = max(0, (height - size) // 2), max(0, (width - size) // 2)
    window = (slice(top, top + size), slice(left, left + size))
    return Sample(sample.name, sample.dataset, sample.noisy[window].copy(), sample.clean[window].copy(), sample.meta)


def main() -> None:
    """``python -m denoise.eda data=<config> [data.root=PATH] [eda.max_pairs=N]``."""
    import hydra
    from omegaconf import DictConfig, OmegaConf

    import denoise  # noqa: F401  (resolvers)
    from denoise.tasks import CONF_DIR, instantiate, run_dir

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="eda")
    def app(cfg: DictConfig) -> None:
        OmegaConf.resolve(cfg)
        datamodule = instantiate(cfg.data)
        out = run_dir()
        choice = hydra.core.hydra_config.HydraConfig.get().runtime.choices.get("data", "data")
        report = run(datamodule, out, title=f"data={choice}", options=OmegaConf.to_container(cfg.eda))
        log.info("EDA of %d pairs: %s", report["summary"]["pairs"], out / "eda.md")

    app()


if __name__ == "__main__":
    main()
