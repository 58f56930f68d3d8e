"""The README's headline rows from a zoo index: every trained card's scores beside the papers' and BM3D's, with
the zoo job's goals checked (DnCNN-S at sigma 25 on BSD68 >= 29.0 dB; every model above BM3D on its benchmark at
every sigma it claims).

    python bench/zoo_table.py INDEX.yaml [--markdown zoo_table.md] [--json zoo_goals.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

#: the DnCNN-S card's goal (paper 29.23 dB)
DNCNN_S_GOAL = ("dncnn_gray_s25", "bsd68_s25", 29.0)


def bm3d_of(card: dict[str, Any], key: str) -> float | None:
    """BM3D's published PSNR for a score key (``bsd68_s25``), from the card (``bm3d:``, keyed by set and sigma or
    by set alone for a fixed-sigma card)."""
    bm3d = card.get("bm3d") or {}
    return bm3d.get(key, bm3d.get(key.split("_s")[0]))


def paper_of(card: dict[str, Any], key: str) -> float | None:
    paper = card.get("paper") or {}
    return paper.get(key, paper.get(key.split("_s")[0]))


def rows_and_goals(cards: dict[str, dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rows, goals = [], {}
    for name, card in cards.items():
        for key, score in (card.get("scores") or {}).items():
            if not isinstance(score, dict) or "psnr" not in score:
                continue
            bm3d = bm3d_of(card, key)
            rows.append({"card": name, "benchmark": key, "psnr": score["psnr"], "ssim": score["ssim"],
                         "paper": paper_of(card, key), "bm3d": bm3d,
                         "beats_bm3d": None if bm3d is None else score["psnr"] > bm3d})  # fmt: skip
        judged = [r["beats_bm3d"] for r in rows if r["card"] == name and r["beats_bm3d"] is not None]
        if judged:
            goals[f"{name} beats BM3D at every sigma it claims"] = all(judged)
    card, key, floor = DNCNN_S_GOAL
    score = (cards.get(card, {}).get("scores") or {}).get(key)
    if isinstance(score, dict):
        goals[f"{card} {key} >= {floor} dB"] = score["psnr"] >= floor
    return rows, goals


def markdown(rows: list[dict[str, Any]], goals: dict[str, bool]) -> str:
    def number(value: Any, digits: int = 2) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    lines = ["| zoo card | benchmark, sigma | PSNR | SSIM | paper | BM3D |", "| --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        lines.append(f"| `{row['card']}` | {row['benchmark'].replace('_s', ', sigma ')} | {number(row['psnr'])} | "
                     f"{number(row['ssim'], 4)} | {number(row['paper'])} | {number(row['bm3d'])} |")  # fmt: skip
    lines.append("")
    lines += [f"- goal {goal}: {'met' if met else '**not met**'}" for goal, met in goals.items()]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index", type=Path)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cards = (yaml.safe_load(args.index.read_text()) or {}).get("models") or {}
    rows, goals = rows_and_goals(cards)
    table = Table(title=f"zoo scores ({args.index})")
    for column in ("card", "benchmark", "PSNR", "SSIM", "paper", "BM3D", "beats BM3D"):
        table.add_column(column, justify="left" if column in ("card", "benchmark") else "right")
    for row in rows:
        table.add_row(row["card"], row["benchmark"], f"{row['psnr']:.2f}", f"{row['ssim']:.4f}",
                      "-" if row["paper"] is None else f"{row['paper']:.2f}",
                      "-" if row["bm3d"] is None else f"{row['bm3d']:.2f}",
                      {None: "-", True: "yes", False: "NO"}[row["beats_bm3d"]])  # fmt: skip
    Console().print(table)
    for goal, met in goals.items():
        Console().print(f"goal {goal}: {'met' if met else 'NOT met'}")
    if args.markdown:
        args.markdown.write_text(markdown(rows, goals))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "goals": goals}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
