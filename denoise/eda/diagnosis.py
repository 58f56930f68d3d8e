"""The EDA's noise diagnosis section: what kind of noise the noisy images hold, measured blind (no clean images:
:mod:`denoise.data.noise_diagnosis`), the objectives it recommends, and where clean images exist the true
correlation of the residual ``noisy - clean`` beside the blind estimate, as a check."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from denoise.data.noise_diagnosis import LAGS, ImageNoise, diagnose_measured, measure_image, signal_ratio


def as_integer_image(image: np.ndarray) -> np.ndarray:
    """A float ``H x W x C`` image in [0, 1] as 16 bits (what the blind measurements read); integers unchanged."""
    if image.dtype in (np.uint8, np.uint16):
        return image
    return np.round(np.clip(image, 0.0, 1.0) * 65535.0).astype(np.uint16)


def residual_correlation(noisy: np.ndarray, clean: np.ndarray) -> float:
    """The true lag-1 autocorrelation of the noise ``noisy - clean`` (horizontal and vertical averaged, per
    channel, then averaged)."""
    residual = noisy.astype(np.float64) - clean.astype(np.float64)
    residual = residual.reshape(*residual.shape[:2], -1)
    residual = residual - residual.mean(axis=(0, 1))
    energy = (residual**2).mean(axis=(0, 1))
    horizontal = (residual[:, :-1] * residual[:, 1:]).mean(axis=(0, 1))
    vertical = (residual[:-1] * residual[1:]).mean(axis=(0, 1))
    usable = energy > 0
    if not usable.any():
        return 0.0
    return float(np.mean(((horizontal + vertical) / 2)[usable] / energy[usable]))


def plot_diagnosis(path: Path, measured: Sequence[ImageNoise]) -> Path:
    """Left: the residual's correlation at lags 1-3 per image (the threshold drawn); right: the residual variance
    of smooth blocks against brightness, per image (a rising or falling line: signal-dependent noise)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from denoise.data.noise_diagnosis import CORRELATED

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for image in measured:
        left.plot(LAGS, image.correlation, color="tab:blue", alpha=0.35, marker="o")
        if image.brightness:
            right.plot(image.brightness, image.variance, color="tab:orange", alpha=0.35, marker=".")
    left.plot(
        LAGS,
        [statistics.median(m.correlation[i] for m in measured) for i in range(len(LAGS))],
        color="black",
        marker="o",
        label="median",
    )
    left.axhline(CORRELATED, color="tab:red", linestyle="--", label=f"correlated above {CORRELATED}")
    left.set(xlabel="lag (pixels)", ylabel="residual autocorrelation", xticks=list(LAGS), title="spatial correlation")
    left.legend(fontsize=8)
    right.set(xlabel="brightness (0-255)", ylabel="residual variance", title="noise against the signal")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def diagnosis_numbers(
    measured: Sequence[ImageNoise], names: Sequence[str], truths: Sequence[float] = (), clean_level: float | None = None
) -> dict[str, Any]:
    """``noise`` in eda.json: ``diagnosis`` (the folder's verdict), ``per_image`` and, with clean images,
    ``residual_correlation`` (the true lag-1 value, median over the pairs)."""
    diagnosis = diagnose_measured(measured) if clean_level is None else diagnose_measured(measured, clean_level)
    per_image = [
        {
            "name": name,
            "level": m.level,
            "fit_level": m.fit_level,
            "correlation": m.correlation[0],
            "signal_ratio": signal_ratio(m.brightness, m.variance),
        }
        for name, m in zip(names, measured, strict=True)
    ]
    numbers: dict[str, Any] = {"diagnosis": diagnosis.as_dict(), "per_image": per_image}
    if truths:
        numbers["residual_correlation"] = float(statistics.median(truths))
    return numbers


def diagnosis_section(noise: dict[str, Any], picture: str) -> list[str]:
    diagnosis = noise["diagnosis"]
    recommended = ", ".join(f"`objective={name}`" for name in diagnosis["recommended_objectives"]) or "none"
    rows = [
        f"- **verdict**: {diagnosis['verdict']}",
        f"- **recommended**: {recommended}",
        f"- noise level {diagnosis['fit_level']:.2f}/255 in the flattest regions (Immerkaer's fine-scale estimate "
        f"{diagnosis['level']:.2f}); lag-1 correlation {diagnosis['correlation']:.2f} (lags 1-3: "
        + ", ".join(f"{value:.2f}" for value in diagnosis["correlation_lags"])
        + f"; per channel: {', '.join(f'{value:.2f}' for value in diagnosis['channel_correlation'])}); "
        f"brightest-to-darkest noise variance {diagnosis['signal_ratio']:.2f}",
        f"- thresholds: correlated at {diagnosis['thresholds']['correlated']}, signal-dependent beyond "
        f"{diagnosis['thresholds']['signal_ratio']}x, clean below {diagnosis['thresholds']['clean_level']}/255",
    ]
    if "residual_correlation" in noise:
        rows.append(
            f"- with the clean images: the noise's true lag-1 correlation is {noise['residual_correlation']:.2f} (the "
            "blind estimate reads lower: the fit it measures after takes the slowest part of the noise with it)"
        )
    return ["## Noise diagnosis", "", *rows, "", f"![noise diagnosis]({picture})", ""]


def run_noisy(datamodule: Any, out: Path, title: str, max_images: int | None = None, progress: bool = True) -> dict:
    """The EDA of noisy images without clean twins: every image measured blind (one in memory at a time), the
    diagnosis and the objectives it recommends, in ``eda.md``, ``eda_diagnosis.png`` and ``eda.json``."""
    from denoise.data.console import Steps
    from denoise.data.files import write_text
    from denoise.evaluation.report import markdown_table, write_json

    images = datamodule.noisy_files()[: None if max_images is None else int(max_images)]
    if not images:
        raise ValueError("the dataset holds no images to analyze")
    measured, names = [], []
    with Steps("noise diagnosis", total=len(images), unit="images", enabled=progress) as steps:
        for path in images:
            measured.append(measure_image(datamodule.read_noisy(path)))
            names.append(path.name)
            steps.advance(1, path.name)
    out.mkdir(parents=True, exist_ok=True)
    noise = diagnosis_numbers(measured, names, clean_level=getattr(datamodule, "min_noise_sigma", None))
    picture = plot_diagnosis(out / "eda_diagnosis.png", measured).name
    report = {
        "title": title,
        "summary": {"images": len(measured), "pairs": 0},
        "noise": noise,
        "pictures": {"diagnosis": picture},
    }
    rows = [
        {
            "image": n["name"],
            "level": f"{n['fit_level']:.2f}",
            "lag-1 correlation": f"{n['correlation']:.2f}",
            "signal ratio": f"{n['signal_ratio']:.4g}" if np.isfinite(n["signal_ratio"]) else "-",
        }
        for n in noise["per_image"]
    ]
    lines = [f"# EDA: {title}", "", f"{len(measured)} noisy images, no clean images: the noise measured blind.", ""]
    lines += diagnosis_section(noise, picture)
    lines += ["## Every image", "", markdown_table(rows, list(rows[0])), ""]
    write_text(out / "eda.md", "\n".join(lines) + "\n")
    write_json(out / "eda.json", report)
    return report
