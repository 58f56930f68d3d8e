"""Calibration of the noise diagnosis (``denoise/data/noise_diagnosis.py``): its measurements on clean test sets,
on synthetic noise of known kind (independent Gaussian, Gaussian through a known blur, demosaiced Bayer noise,
Poisson-Gaussian) and on real camera noise (SIDD's sRGB pairs, and the same real noise scaled down to a mild
37 dB), each set's spread and the diagnosis it gets.

    python bench/noise_diagnosis.py [--data-dir ../shared/data] [--images 12] [--json FILE]

What the margins mean: a threshold sits between the largest value of the sets that must fall below it and the
smallest of those that must rise above it; the table prints both sides.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from denoise.data.console import show_table
from denoise.data.io import list_images, read_raw
from denoise.data.noise_diagnosis import CLEAN_LEVEL, CORRELATED, SIGNAL_RATIO, diagnose, measure_image, signal_ratio
from denoise.evaluation.report import write_json

ROOT = Path(__file__).resolve().parents[1]
CLEAN_SETS = ("set12", "bsd68", "cbsd68", "kodak24", "mcmaster")


def blur_correlation(sigma: float) -> float:
    """The lag-1 correlation of i.i.d. noise after a separable Gaussian blur of ``sigma`` (OpenCV's kernel)."""
    kernel = cv2.getGaussianKernel(2 * int(np.ceil(3 * sigma)) + 1, sigma)[:, 0]
    return float((kernel[:-1] * kernel[1:]).sum() / (kernel**2).sum())


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def gaussian(sigma: float) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    return lambda clean, rng: to_uint8(clean + rng.normal(0, sigma, clean.shape))


def blurred(sigma: float, blur: float) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    """Gaussian noise through a blur, rescaled to ``sigma`` after it: correlation :func:`blur_correlation`."""

    def make(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        noise = cv2.GaussianBlur(rng.normal(0, 1, clean.shape).astype(np.float32), (0, 0), blur)
        noise = noise.reshape(clean.shape)
        return to_uint8(clean + sigma * noise / noise.std())

    return make


def bayer(sigma: float) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    """Independent noise on an RGGB mosaic of the clean image, demosaiced (OpenCV's bilinear): what a camera's
    demosaicing does to sensor noise."""

    def make(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        rgb = clean if clean.shape[2] == 3 else np.repeat(clean, 3, axis=2)
        height, width = rgb.shape[0] // 2 * 2, rgb.shape[1] // 2 * 2
        mosaic = np.empty((height, width))
        mosaic[0::2, 0::2] = rgb[0:height:2, 0:width:2, 0]
        mosaic[0::2, 1::2] = rgb[0:height:2, 1:width:2, 1]
        mosaic[1::2, 0::2] = rgb[1:height:2, 0:width:2, 1]
        mosaic[1::2, 1::2] = rgb[1:height:2, 1:width:2, 2]
        noisy = to_uint8(mosaic + rng.normal(0, sigma, mosaic.shape))
        return cv2.cvtColor(noisy, cv2.COLOR_BayerBG2RGB)  # OpenCV names the pattern from the second row

    return make


def poisson_gaussian(a: float, sigma: float) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    """``x + N(0, a x + sigma²)`` on the [0, 1] scale, as ``noise=poisson_gaussian``."""

    def make(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = clean / 255.0
        return to_uint8(255.0 * (x + rng.normal(0, 1, x.shape) * np.sqrt(a * x + (sigma / 255.0) ** 2)))

    return make


def images(folder: Path, count: int) -> list[np.ndarray]:
    return [read_raw(path) for path in list_images(folder)[:count]]


def sidd(data: Path, count: int, psnr: float | None = None) -> Iterator[np.ndarray]:
    """SIDD's real noisy images; with ``psnr``, their real noise scaled down to that PSNR against the clean."""
    for path in list_images(data / "sidd_samples" / "noisy")[:count]:
        noisy = read_raw(path).astype(np.float64)
        if psnr is None:
            yield noisy.astype(np.uint8)
            continue
        clean = read_raw(data / "sidd_samples" / "clean" / path.name).astype(np.float64)
        residual = noisy - clean
        scale = 255.0 * 10 ** (-psnr / 20) / np.sqrt((residual**2).mean())
        yield to_uint8(clean + scale * residual)


def sets(data: Path, count: int) -> Iterator[tuple[str, str, list[np.ndarray]]]:
    """(name, what it must be diagnosed as, images)."""
    rng = np.random.default_rng(0)
    for name in CLEAN_SETS:
        yield name, "clean", images(data / name, count)
    yield "sidd clean", "clean", images(data / "sidd_samples" / "clean", count)
    color = images(data / "kodak24", count)
    for sigma in (1, 3, 5, 15):
        yield f"gaussian {sigma}", "independent", [gaussian(sigma)(c.astype(np.float64), rng) for c in color]
    for blur in (0.6, 1.0):
        label = f"blurred gaussian 5 (blur {blur}: lag-1 {blur_correlation(blur):.2f})"
        yield label, "correlated", [blurred(5, blur)(c.astype(np.float64), rng) for c in color]
    for sigma in (3, 10):
        yield f"demosaiced bayer {sigma}", "correlated", [bayer(sigma)(c.astype(np.float64), rng) for c in color]
    yield (
        "poisson-gaussian 0.01, 2",
        "signal-dependent",
        [poisson_gaussian(0.01, 2)(c.astype(np.float64), rng) for c in color],
    )
    yield "sidd real noisy", "correlated", list(sidd(data, count))
    yield "sidd real noise at 37 dB", "noisy", list(sidd(data, count, psnr=37.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--images", type=int, default=12, help="images per set")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "noise_diagnosis.json")
    args = parser.parse_args()
    rows, table = [], []
    for name, expected, batch in sets(args.data_dir, args.images):
        measured = [measure_image(image) for image in batch]
        correlations = [m.correlation[0] for m in measured]
        ratios = [signal_ratio(m.brightness, m.variance) for m in measured]
        ratios = [r for r in ratios if np.isfinite(r)]
        levels = [m.level for m in measured]
        fit_levels = [m.fit_level for m in measured]
        verdict = diagnose(batch)
        row = {
            "set": name,
            "expected": expected,
            "images": len(batch),
            "level": [min(levels), statistics.median(levels), max(levels)],
            "fit_level": [min(fit_levels), statistics.median(fit_levels), max(fit_levels)],
            "correlation": [min(correlations), statistics.median(correlations), max(correlations)],
            "signal_ratio": [min(ratios), statistics.median(ratios), max(ratios)] if ratios else None,
            "diagnosis": verdict.as_dict(),
        }
        rows.append(row)
        kind = "clean" if verdict.looks_clean else "correlated" if verdict.correlated else "independent"
        kind += ", signal-dependent" if verdict.signal_dependent else ""
        spread = lambda v: f"{v[1]:.2f} ({v[0]:.2f}-{v[2]:.2f})"  # noqa: E731
        table.append(
            [
                name,
                expected,
                spread(row["level"]),
                spread(row["fit_level"]),
                spread(row["correlation"]),
                spread(row["signal_ratio"]) if ratios else "-",
                kind,
            ]
        )
    show_table(
        f"noise diagnosis: median (min-max) per image; thresholds: correlated >= {CORRELATED}, signal ratio >= "
        f"{SIGNAL_RATIO} (or <= 1/{SIGNAL_RATIO}), clean below {CLEAN_LEVEL}/255",
        ("set", "expected", "level /255", "fit level /255", "lag-1 correlation", "signal ratio", "diagnosis"),
        table,
    )
    write_json(args.json, {"benchmark": "noise_diagnosis", "images_per_set": args.images, "rows": rows})
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
