"""The EDA's report: ``eda.md`` (tables and the plots) and ``eda.json`` (every number), and :func:`run`, the
whole EDA of one data module."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from denoise.data.files import write_text
from denoise.data.noise import NoiseModel
from denoise.data.noise_diagnosis import ImageNoise, measure_image
from denoise.eda.diagnosis import (
    as_integer_image,
    diagnosis_numbers,
    diagnosis_section,
    plot_diagnosis,
    residual_correlation,
    run_noisy,
)
from denoise.eda.plots import plot_counts, plot_histograms, plot_noise_model, plot_per_pair, plot_samples, sort_key
from denoise.eda.statistics import Analysis, analyze
from denoise.eda.streaming import CATEGORY_LABELS, Sample, iter_samples, thumbnail
from denoise.evaluation.report import markdown_table, write_json


# -- the report --------------------------------------------------------------------------------------------
def configured_noise(datamodule: Any) -> NoiseModel | None:
    """The synthetic noise model, or None for real pairs."""
    return getattr(datamodule, "noise", None)


def _num(value: float | None) -> str:
    """Four significant digits: noise parameters span 1e-6 to 1e2."""
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4g}"


def write_report(
    out: Path,
    analysis: Analysis,
    samples: Sequence[Sample],
    title: str,
    noise: NoiseModel | None = None,
    min_bin_pixels: int = 200,
    fit_range: Sequence[float] = (0.02, 0.98),
    max_groups: int = 12,
    noise_numbers: dict[str, Any] | None = None,
    measured: Sequence[ImageNoise] = (),
) -> dict[str, Any]:
    """Write ``eda.md`` (tables + PNG plots) and ``eda.json`` (every number) into ``out``; return the JSON. One
    function per section of the report; ``noise_numbers`` (:func:`diagnosis_numbers` of ``measured``): the blind
    noise diagnosis of the noisy images."""
    out.mkdir(parents=True, exist_ok=True)
    if not analysis.pairs:
        raise ValueError("the dataset holds no pairs to analyze")
    fits = analysis.fits(min_bin_pixels, fit_range)
    pictures = draw_pictures(out, analysis, fits, samples, max_groups)
    report = report_numbers(analysis, fits, pictures, title)
    lines = counts_section(report, analysis, pictures)
    if noise is not None:
        lines += configured_noise_section(report, noise, fits.get("synthetic"))
    lines += noise_model_section(analysis, fits, pictures, fit_range)
    if noise_numbers is not None:
        report["noise"] = noise_numbers
        report["pictures"]["diagnosis"] = plot_diagnosis(out / "eda_diagnosis.png", measured).name
        lines += diagnosis_section(noise_numbers, report["pictures"]["diagnosis"])
    if "samples" in pictures:
        lines += ["## Samples", "", f"![samples]({pictures['samples'].name})", ""]
    lines += pairs_section(analysis)
    write_text(out / "eda.md", "\n".join(lines) + "\n")
    write_json(out / "eda.json", report)
    return report


def draw_pictures(out: Path, analysis: Analysis, fits: Mapping[str, Any], samples: Sequence[Sample],
                  max_groups: int) -> dict[str, Path]:  # fmt: skip
    pictures = {
        "counts": plot_counts(out / "eda_counts.png", analysis.counts, analysis.sizes),
        "per_pair": plot_per_pair(out / "eda_per_pair.png", analysis.pairs),
        "noise_model": plot_noise_model(out / "eda_noise_model.png", fits, max_groups),
        "histograms": plot_histograms(out / "eda_histograms.png", analysis.groups, max_groups),
    }
    if samples:
        pictures["samples"] = plot_samples(out / "eda_samples.png", samples)
    return pictures


def report_numbers(analysis: Analysis, fits: Mapping[str, Any], pictures: Mapping[str, Path],
                   title: str) -> dict[str, Any]:  # fmt: skip
    """eda.json's numbers: the summary, the counts per field, sizes, every pair, the per-group fits."""
    psnr = np.array([p["psnr_noisy"] for p in analysis.pairs])
    std = np.array([p["noise_std_mean"] for p in analysis.pairs])
    summary = {
        "pairs": len(analysis.pairs),
        "psnr_noisy_mean": float(psnr[np.isfinite(psnr)].mean()) if np.isfinite(psnr).any() else None,
        "noise_std_mean": float(std.mean()),
    }
    counts = {
        dataset: {
            key: dict(sorted(c.items(), key=lambda kv: sort_key(kv[0]))) if key != "pairs" else c["all"]
            for key, c in fields.items()
        }
        for dataset, fields in analysis.counts.items()
    }
    return {"title": title, "summary": summary, "counts": counts, "sizes": dict(analysis.sizes),
            "pairs": analysis.pairs, "groups": fits, "pictures": {k: p.name for k, p in pictures.items()}}  # fmt: skip


def counts_section(report: Mapping[str, Any], analysis: Analysis, pictures: Mapping[str, Path]) -> list[str]:
    summary = report["summary"]
    datasets = [
        "; ".join(
            [f"- **{dataset}**: {fields['pairs']} pairs"]
            + [
                f"per {CATEGORY_LABELS.get(key, key)}: " + ", ".join(f"{k} ({v})" for k, v in counts.items())
                for key, counts in fields.items()
                if key != "pairs"
            ]
        )
        for dataset, fields in report["counts"].items()
    ]
    return [
        f"# Exploratory data analysis: {report['title']}",
        "",
        f"{summary['pairs']} pairs; per pair on average: noisy-input PSNR {summary['psnr_noisy_mean']:.2f} dB, "
        f"residual std {255 * summary['noise_std_mean']:.2f} (0-255 scale). Every number is also in `eda.json`.",
        "",
        "## Counts",
        "",
        *datasets,
        "- **image size**: " + ", ".join(f"{k} ({v})" for k, v in analysis.sizes.most_common()),
        "",
        f"![counts]({pictures['counts'].name})",
        "",
        "## Noise per pair",
        "",
        f"![per pair]({pictures['per_pair'].name})",
        "",
    ]


def configured_noise_section(report: dict[str, Any], noise: NoiseModel,
                             measured: Mapping[str, Any] | None) -> list[str]:  # fmt: skip
    """Synthetic noise: the configured level and noise model against what the pairs show (also into eda.json)."""
    expected = noise.expected_fit()
    settings = noise.config()
    report["configured_noise"] = settings
    report["expected_noise"] = expected
    fit = measured["fit"] if measured else None

    def row(quantity: str, configured: Any, found: Any) -> dict[str, Any]:
        return {"quantity": quantity, "from the configuration": configured, "measured": found}

    rows = [
        row(
            "noise std (0-255)",
            _num(255 * expected["std"]) if expected else "-",
            _num(255 * measured["std"]) if measured else "-",
        ),
        row("a", _num(expected["a"]) if expected else "-", _num(fit["a"]) if fit else "-"),
        row("b", _num(expected["b"]) if expected else "-", _num(fit["b"]) if fit else "-"),
    ]
    setting = ", ".join(f"{k}={v}" for k, v in settings.items())
    return [
        "## Configured against measured noise",
        "",
        f"Configured: `{setting}` (levels on the 0-255 scale; `a` and `b` of var = a * x + b on the 0-1 scale).",
        "",
        markdown_table(rows, list(rows[0])),
        "",
    ]


def noise_model_section(analysis: Analysis, fits: Mapping[str, Any], pictures: Mapping[str, Path],
                        fit_range: Sequence[float]) -> list[str]:  # fmt: skip
    """The signal-dependent noise fit per group (var = a * x + b) and the residual histograms."""
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
    return [
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


def pairs_section(analysis: Analysis) -> list[str]:
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
    return ["## Every pair", "", markdown_table(pair_rows, list(pair_rows[0]))]


def run(datamodule: Any, out: Path, title: str, options: Mapping[str, Any], progress: bool = True) -> dict[str, Any]:
    """The whole EDA of one data module into ``out`` (``options``: the ``eda`` config block); a data module without
    clean images (a folder of noisy photos) gets the noise diagnosis alone."""
    if not getattr(datamodule, "has_clean", True):
        return run_noisy(datamodule, out, title, options.get("max_pairs"), progress)
    max_pairs = options.get("max_pairs")
    total = datamodule.pair_count()
    if max_pairs is not None:
        total = min(total, int(max_pairs))
    grid = int(options.get("grid_samples", 4))
    picks = set(np.linspace(0, max(total - 1, 0), num=min(grid, total), dtype=int).tolist()) if grid else set()
    kept: list[Sample] = []
    measured: list[ImageNoise] = []
    names: list[str] = []
    truths: list[float] = []

    def stream() -> Iterator[Sample]:
        for index, sample in enumerate(iter_samples(datamodule)):
            if index >= total:
                return
            if index in picks:  # a few pairs for the picture grid, shrunk to bound memory
                kept.append(thumbnail(sample, int(options.get("grid_size", 512))))
            if min(sample.noisy.shape[:2]) >= 16:  # the blind diagnosis of the noisy image, and the truth
                measured.append(measure_image(as_integer_image(sample.noisy)))
                names.append(sample.name)
                truths.append(residual_correlation(sample.noisy, sample.clean))
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
        noise_numbers=diagnosis_numbers(measured, names, truths) if measured else None,
        measured=measured,
    )
