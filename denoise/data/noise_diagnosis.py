"""What kind of noise a folder of noisy images holds, measured without clean images, and which objective will
work on it.

Every image is cut into 8x8 blocks; a quadratic surface fitted to each block is taken off, which leaves the
noise where the block is smooth (and texture where it is not). From the flattest quarter of the blocks (no
clipped pixels) come:

* ``level``: the noise standard deviation, 0-255 scale, by Immerkaer's estimator (:func:`flat_region_sigma`;
  exact for independent noise, low for correlated noise), and ``fit_level`` (see below);
* ``correlation``: the lag-1 autocorrelation of the residual (horizontal and vertical averaged, per channel
  and overall), corrected for what the quadratic fit does to independent noise, so i.i.d. noise reads 0.
  Folder medians: independent Gaussian noise (sigma 3-15) 0.02-0.07, Poisson-Gaussian 0.06; Gaussian noise
  through a blur 0.31-0.49, demosaiced Bayer noise 0.46, SIDD's real sRGB noise 0.31; :data:`CORRELATED` (0.2)
  sits between them (``python bench/noise_diagnosis.py`` measures every set). It reads below the noise's own
  correlation (a blur of lag-1 0.45 measures 0.31): the fit takes the slowest part of the noise with it;
* ``signal_dependent``: the residual variance of smooth blocks against their brightness, in 8 brightness bins
  (a low quantile in each, which texture does not reach), fitted by a line ``var = a * x + b``: when the
  fitted variance at the brightest populated bin is at least :data:`SIGNAL_RATIO` times the darkest's (or at
  most its inverse), the noise depends on the signal (shot noise, Poisson-Gaussian: 6.3; a camera's tone curve
  can make sRGB noise shrink with brightness instead). Independent Gaussian noise measures 1.1-1.4.

From them, :func:`recommend`: independent noise suits ``neighbor2neighbor``/``noise2void``; spatially correlated
noise breaks both (their pixels' neighbours carry the pixel's own noise) and needs ``apbsn`` (or
``noise2noise`` with two shots of each scene).

Whether a folder is noisy at all (``looks_clean``): its ``fit_level`` below ``clean_level``
(``data.min_noise_sigma``, 2.3/255). The fit level is the residual of the quadratic fit in the flattest tenth of
the 8x8 blocks; unlike Immerkaer's Laplacian (``level``), which sees only the finest scale, it keeps spatially
correlated noise: Gaussian noise of sigma 5 through a blur measures 3.6-4.6 there and 1.4-2.5 by Immerkaer, and
SIDD's real noise scaled down to a mild 37 dB (RMS 3.6/255) 2.72 against 1.52. Clean test sets measure 0.96
(SIDD's ground truths) to 1.94 (Set12) as folder medians: the threshold sits between them with margins of 0.36
and 0.42 (``python bench/noise_diagnosis.py``). Neither the correlation nor the dependence on the signal tells
clean from mildly noisy: clean sets' flattest regions hold JPEG and film-scan residue with a lag-1 correlation of
0.2-0.45, and SIDD's ground truths hold the same camera noise as its noisy images at a sixth of the level.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from denoise.data.noise_estimate import flat_region_sigma

BLOCK = 8
#: the share of the non-clipped blocks, flattest first, whose residual is taken as the noise
FLAT_SHARE = 0.25
#: lag-1 correlation above which the noise counts as spatially correlated (see bench/noise_diagnosis.py)
CORRELATED = 0.2
#: brightest-to-darkest ratio of the fitted residual variance above which (or below whose inverse: sRGB noise
#: after a camera's tone curve shrinks with brightness) the noise counts as signal-dependent
SIGNAL_RATIO = 2.0
#: below this fit level (0-255, flattest tenth of the blocks) a folder looks clean (``data.min_noise_sigma``)
CLEAN_LEVEL = 2.3
LAGS = (1, 2, 3)
#: the quantile of the blocks' residual variance taken as the noise variance by the fit level
FIT_QUANTILE = 0.1


def _quadratic_projector(block: int = BLOCK) -> np.ndarray:
    """``I - P`` for ``P`` the least-squares projection onto quadratic surfaces over a ``block x block`` grid."""
    y, x = np.mgrid[0:block, 0:block].astype(np.float64) / (block - 1) - 0.5
    design = np.stack([np.ones_like(x), y, x, y * y, x * y, x * x], axis=-1).reshape(-1, 6)
    return np.eye(block * block) - design @ np.linalg.pinv(design)


_RESIDUAL = _quadratic_projector()


def _lag_pairs(lag: int, block: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of the horizontal and vertical pixel pairs ``lag`` apart inside a block."""
    index = np.arange(block * block).reshape(block, block)
    first = np.concatenate([index[:, :-lag].ravel(), index[:-lag, :].ravel()])
    second = np.concatenate([index[:, lag:].ravel(), index[lag:, :].ravel()])
    return first, second


def _iid_bias(lag: int) -> float:
    """What the quadratic fit alone gives the lag's correlation of i.i.d. noise (slightly negative)."""
    first, second = _lag_pairs(lag)
    pairs = _RESIDUAL[first, second].sum() / len(first)
    return float(pairs / (np.trace(_RESIDUAL) / _RESIDUAL.shape[0]))


_BIAS = {lag: _iid_bias(lag) for lag in LAGS}


@dataclass
class ImageNoise:
    """The measurements of one image (see the module's docstring)."""

    level: float
    fit_level: float
    correlation: list[float]  # lags 1, 2, 3, the channels averaged
    channel_correlation: list[float]  # lag 1 per channel
    brightness: list[float]  # per brightness bin with enough smooth blocks: the bin's centre
    variance: list[float]  # and the low quantile of its blocks' residual variance (0-255 scale, squared)


def blocks_of(plane: np.ndarray, block: int = BLOCK) -> np.ndarray:
    rows, cols = plane.shape[0] // block, plane.shape[1] // block
    cut = plane[: rows * block, : cols * block].reshape(rows, block, cols, block)
    return cut.transpose(0, 2, 1, 3).reshape(-1, block * block)


def measure_image(image: np.ndarray, max_side: int = 1024) -> ImageNoise:
    """The noise measurements of one ``H x W x C`` uint8/uint16 image (the central ``max_side`` square at most)."""
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"expected an 8- or 16-bit image, got {image.dtype}")
    height, width = image.shape[:2]
    if min(height, width) < 2 * BLOCK:
        raise ValueError(f"a {width}x{height} image is too small to measure its noise (at least {2 * BLOCK} a side)")
    top, left = max(0, (height - max_side) // 2), max(0, (width - max_side) // 2)
    region = image[top : top + max_side, left : left + max_side].astype(np.float64)
    region *= 255.0 / (255.0 if image.dtype == np.uint8 else 65535.0)
    region = region.reshape(*region.shape[:2], -1)
    lag_values: list[list[float]] = [[] for _ in LAGS]
    means, variances, fit_levels = [], [], []
    for channel in range(region.shape[2]):
        blocks = blocks_of(region[..., channel])
        clipped = ((blocks <= 0.5) | (blocks >= 254.5)).any(axis=1)
        residual = blocks[~clipped] @ _RESIDUAL  # _RESIDUAL is symmetric
        if len(residual) < 4:
            residual, clipped = blocks @ _RESIDUAL, np.zeros(len(blocks), dtype=bool)
        energy = (residual**2).sum(axis=1)
        flat = residual[np.argsort(energy)[: max(4, int(len(residual) * FLAT_SHARE))]]
        denominator = (flat**2).sum()
        for slot, lag in enumerate(LAGS):
            first, second = _lag_pairs(lag)
            value = (flat[:, first] * flat[:, second]).sum() / len(first) / (denominator / flat.shape[1] + 1e-12)
            lag_values[slot].append(float(value - _BIAS[lag]))
        means.append(blocks[~clipped].mean(axis=1))
        variances.append(energy / np.trace(_RESIDUAL))
        fit_levels.append(float(np.sqrt(np.quantile(variances[-1], FIT_QUANTILE))))
    brightness, variance = _variance_by_brightness(np.concatenate(means), np.concatenate(variances))
    return ImageNoise(
        level=flat_region_sigma(image if image.ndim == 3 else image[..., None]),
        fit_level=float(np.mean(fit_levels)),
        correlation=[float(np.mean(values)) for values in lag_values],
        channel_correlation=lag_values[0],
        brightness=brightness,
        variance=variance,
    )


def _variance_by_brightness(
    means: np.ndarray, variances: np.ndarray, bins: int = 8, quantile: float = 0.2, fewest: int = 8
) -> tuple[list[float], list[float]]:
    """Per brightness bin (0-255 in ``bins``) holding at least ``fewest`` blocks: its centre and the ``quantile``
    of its blocks' residual variance (smooth blocks: texture sits above the low quantile)."""
    edges = np.linspace(0, 255, bins + 1)
    centres, values = [], []
    for low, high in itertools.pairwise(edges):
        inside = variances[(means >= low) & (means < high)]
        if len(inside) >= fewest:
            centres.append(float((low + high) / 2))
            values.append(float(np.quantile(inside, quantile)))
    return centres, values


def signal_ratio(brightness: Sequence[float], variance: Sequence[float]) -> float:
    """The fitted residual variance at the brightest populated bin over the darkest's (1.0: flat; nan when fewer
    than 3 bins are populated)."""
    if len(brightness) < 3:
        return float("nan")
    slope, intercept = np.polyfit(np.asarray(brightness) / 255.0, np.asarray(variance), 1)
    low, high = intercept + slope * brightness[0] / 255.0, intercept + slope * brightness[-1] / 255.0
    floor = max(float(np.median(variance)) * 0.05, 1e-6)
    return float(max(high, floor) / max(low, floor))


@dataclass
class Diagnosis:
    """A folder's noise, what it means, and the objectives that will work on it, best first."""

    level: float
    fit_level: float
    correlation: float
    correlation_lags: list[float]
    channel_correlation: list[float]
    signal_ratio: float
    correlated: bool
    signal_dependent: bool
    looks_clean: bool
    recommended_objectives: list[str]
    verdict: str
    images: int = 0
    thresholds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def recommend(
    correlated: bool, signal_dependent: bool, looks_clean: bool, correlation: float, level: float = 0.0
) -> tuple[list[str], str]:
    """The objectives that will work, best first, and one sentence that says why."""
    if looks_clean:
        return [], (
            f"no noise found: {level:.2f}/255 in the flattest regions, as clean photos measure (clean test sets "
            "1.0-1.9; real camera noise at 37 dB 2.7); self-supervised training would learn to leave them as they are"
        )
    dependent = (
        " The noise grows with the signal (shot noise): the objectives above assume zero-mean noise, which holds; "
        "a noise-level map or a variance-stabilizing transform helps a supervised model."
        if signal_dependent
        else ""
    )
    if correlated:
        return ["apbsn", "noise2noise"], (
            f"spatially correlated noise (lag-1 correlation {correlation:.2f}): neighbor2neighbor and noise2void "
            "will fail (a pixel's neighbours carry its noise); use objective=apbsn model=bsn, or noise2noise with "
            f"two shots of each scene.{dependent}"
        )
    return ["neighbor2neighbor", "noise2void", "apbsn"], (
        f"independent noise (lag-1 correlation {correlation:.2f}): neighbor2neighbor or noise2void will work; "
        f"apbsn works too, at a higher cost.{dependent}"
    )


def diagnose(images: Iterable[np.ndarray], clean_level: float = CLEAN_LEVEL) -> Diagnosis:
    """The diagnosis of a set of noisy 8/16-bit images: the medians of the per-image measurements; below
    ``clean_level`` (0-255, flattest regions) they look clean."""
    return diagnose_measured([measure_image(image) for image in images], clean_level)


def diagnose_measured(measured: Sequence[ImageNoise], clean_level: float = CLEAN_LEVEL) -> Diagnosis:
    """:func:`diagnose` from measurements already taken (the EDA measures each image as it streams by)."""
    if not measured:
        raise ValueError("no images to diagnose")
    level = statistics.median(m.level for m in measured)
    fit_level = statistics.median(m.fit_level for m in measured)
    lags = [statistics.median(m.correlation[slot] for m in measured) for slot in range(len(LAGS))]
    channels = [
        statistics.median(m.channel_correlation[channel] for m in measured)
        for channel in range(len(measured[0].channel_correlation))
    ]
    ratios = [r for r in (signal_ratio(m.brightness, m.variance) for m in measured) if np.isfinite(r)]
    ratio = statistics.median(ratios) if ratios else float("nan")
    correlated = lags[0] >= CORRELATED
    dependent = bool(np.isfinite(ratio) and (ratio >= SIGNAL_RATIO or ratio <= 1 / SIGNAL_RATIO))
    looks_clean = fit_level < clean_level
    objectives, verdict = recommend(correlated, dependent, looks_clean, lags[0], fit_level)
    return Diagnosis(
        level=float(level),
        fit_level=float(fit_level),
        correlation=float(lags[0]),
        correlation_lags=[float(v) for v in lags],
        channel_correlation=[float(v) for v in channels],
        signal_ratio=float(ratio),
        correlated=correlated,
        signal_dependent=dependent,
        looks_clean=looks_clean,
        recommended_objectives=objectives,
        verdict=verdict,
        images=len(measured),
        thresholds={"correlated": CORRELATED, "signal_ratio": SIGNAL_RATIO, "clean_level": clean_level},
    )
