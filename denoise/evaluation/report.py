"""Results as files, tables and pictures: results.json/.csv/.md, a rich table, a PSNR/SSIM bar chart and
image grids (noisy | every method | clean, each with a zoomed crop)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from denoise.data.console import show_table
from denoise.data.files import atomic_open, write_bytes, write_text

#: columns of results.csv / results.md, in order
RESULT_COLUMNS = ("method", "kind", "psnr", "ssim", "psnr_gain", "ssim_gain", "seconds_per_megapixel", "images")


def write_json(path: Path, data: Mapping[str, Any]) -> Path:
    """Whole or not at all (:func:`denoise.data.files.write_text`)."""
    return write_text(path, json.dumps(dict(data), indent=2, sort_keys=True, default=str) + "\n")


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> Path:
    with atomic_open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def save_figure(fig: Any, path: Path, dpi: int = 110) -> Path:
    """A matplotlib figure as a file that lands whole (rendered in memory, then written atomically)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, format=path.suffix.lstrip(".") or "png")
    return write_bytes(path, buffer.getvalue())


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_fmt(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_markdown(path: Path, title: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> Path:
    return write_text(path, f"# {title}\n\n" + markdown_table(rows, columns))


def print_table(title: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """The rows as a table on stdout (rich on a terminal, full-width plain rows in a pipe)."""
    right = [column for column in columns if column not in {"method", "kind", "metric"}]
    show_table(title, columns, [[_fmt(row.get(c)) for c in columns] for row in rows], right=right)


def method_rows(
    metrics: Mapping[str, float],
    name: str,
    images: int | None = None,
    seconds_per_megapixel: float | None = None,
    prefix: str = "test",
) -> list[dict[str, Any]]:
    """The noisy input and the method as two rows, with the gain over the input."""
    noisy_psnr, noisy_ssim = metrics[f"{prefix}/psnr_noisy"], metrics[f"{prefix}/ssim_noisy"]
    psnr, ssim = metrics[f"{prefix}/psnr"], metrics[f"{prefix}/ssim"]
    return [
        {
            "method": "noisy input",
            "kind": "input",
            "psnr": noisy_psnr,
            "ssim": noisy_ssim,
            "psnr_gain": 0.0,
            "ssim_gain": 0.0,
            "images": images,
        },
        {
            "method": name,
            "kind": "model",
            "psnr": psnr,
            "ssim": ssim,
            "psnr_gain": psnr - noisy_psnr,
            "ssim_gain": ssim - noisy_ssim,
            "seconds_per_megapixel": seconds_per_megapixel,
            "images": images,
        },
    ]


# -- pictures -----------------------------------------------------------------------------------------
KIND_COLORS = {"input": "#9e9e9e", "filter": "#4c72b0", "model": "#dd8452"}


def pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend (figures for reports, never a window)."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window
    import matplotlib.pyplot as plt

    return plt


def plot_psnr_ssim(path: Path, rows: Sequence[Mapping[str, Any]], title: str = "") -> Path:
    """Horizontal bars of PSNR and SSIM per method (coloured by kind: input, filter, model), best on top."""
    plt = pyplot()
    labels = [str(r["method"]) for r in rows][::-1]
    colors = [KIND_COLORS.get(str(r.get("kind")), "#55a868") for r in rows][::-1]
    height = max(2.5, 0.42 * len(rows) + 1.2)
    fig, axes = plt.subplots(1, 2, figsize=(11, height), sharey=True)
    for ax, metric, unit in ((axes[0], "psnr", "PSNR (dB)"), (axes[1], "ssim", "SSIM")):
        values = [float(r[metric]) for r in rows][::-1]
        bars = ax.barh(labels, values, color=colors)
        low = min(values)
        span = max(values) - low or 1.0
        ax.set_xlim(low - 0.15 * span if metric == "psnr" else max(0.0, low - 0.15 * span), max(values) + 0.18 * span)
        ax.bar_label(bars, labels=[f"{v:.2f}" if metric == "psnr" else f"{v:.4f}" for v in values], padding=3)
        ax.set_xlabel(unit)
        ax.grid(axis="x", alpha=0.3)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in KIND_COLORS.values()]
    fig.legend(handles, list(KIND_COLORS), loc="lower right", ncol=3, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    save_figure(fig, path)
    plt.close(fig)
    return path


def zoom_box(clean: np.ndarray, size: int) -> tuple[int, int, int]:
    """``(top, left, size)`` of the square with the most detail (gradient energy) in an ``H x W x C`` image:
    where denoisers differ most visibly."""
    gray = clean.astype(np.float32).mean(axis=2)
    size = max(1, min(size, *gray.shape))
    energy = np.abs(np.diff(gray, axis=0, append=gray[-1:])) + np.abs(np.diff(gray, axis=1, append=gray[:, -1:]))
    integral = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = integral[size:, size:] - integral[:-size, size:] - integral[size:, :-size] + integral[:-size, :-size]
    top, left = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(top), int(left), size


def image_grid(
    path: Path,
    panels: Sequence[tuple[str, np.ndarray, np.ndarray]],
    box: tuple[int, int, int, float],
    title: str = "",
    columns: int = 6,
) -> Path:
    """Save a grid of ``(caption, thumbnail, crop)`` panels: each thumbnail with the crop's box drawn on it,
    the crop enlarged below. ``box`` is ``(top, left, size, scale)`` in full-resolution pixels and the
    thumbnail's scale. Images are ``H x W x C`` floats in [0, 1]."""
    plt = pyplot()
    columns = max(1, min(columns, len(panels)))
    rows = -(-len(panels) // columns)
    thumb_h, thumb_w = panels[0][1].shape[:2]
    panel_w = 2.6
    fig, axes = plt.subplots(
        2 * rows, columns, figsize=(panel_w * columns, rows * panel_w * (thumb_h / thumb_w + 1) + 0.6), squeeze=False
    )
    top, left, size, scale = box
    for ax in axes.flat:
        ax.axis("off")
    for index, (caption, thumbnail, crop) in enumerate(panels):
        row, column = divmod(index, columns)
        for ax, image in ((axes[2 * row][column], thumbnail), (axes[2 * row + 1][column], crop)):
            shown = np.clip(image, 0, 1)
            if shown.shape[2] == 1:
                ax.imshow(shown[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            else:
                ax.imshow(shown, interpolation="nearest")
        axes[2 * row][column].set_title(caption, fontsize=9)
        axes[2 * row][column].add_patch(
            plt.Rectangle((left * scale, top * scale), size * scale, size * scale, fill=False, color="#ff3030", lw=1.2)
        )
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return path
