"""Results as files and tables: results.json, results.csv, results.md and a rich table on the console."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

#: columns of results.csv / results.md, in order
RESULT_COLUMNS = ("method", "kind", "psnr", "ssim", "psnr_gain", "ssim_gain", "seconds_per_megapixel", "images")


def write_json(path: Path, data: Mapping[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(data), indent=2, sort_keys=True, default=str) + "\n")
    return path


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


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
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {title}\n\n" + markdown_table(rows, columns))
    return path


def print_table(title: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="left" if column in {"method", "kind", "metric"} else "right")
    for row in rows:
        table.add_row(*(_fmt(row.get(c)) for c in columns))
    Console().print(table)


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
