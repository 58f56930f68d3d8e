"""The GPU check's summary: every figure of its steps with its goal and whether it is met, as JSON and a table.

    python bench/gpu_summary.py WORK_DIR --device-file device.txt --seconds N --json summary.json --text summary.txt

``WORK_DIR`` holds what ``bench/gpu_check.sh`` ran: ``steps.txt`` (name, exit status, seconds per line) and each
step's JSON. A figure whose step failed or was skipped is reported as missing (its goal then counts as not met).
Exits 0 when every step ran (goals met or not: the figures are the result), 1 when a step failed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

OVERHEAD_GOAL = 1.05
DNCNN_RATE_GOAL = 120.0
PARITY_TOLERANCE = 1e-4


def read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def figure(name: str, value: Any, goal: str | None, met: bool | None, unit: str = "") -> dict[str, Any]:
    return {"figure": name, "value": value, "unit": unit, "goal": goal, "met": met}


def overhead_figures(report: dict[str, Any] | None) -> list[dict[str, Any]]:
    rows = []
    for row in (report or {}).get("results", []):
        label = row["model"] + (" compiled" if row.get("compile") else "")
        ratio = row["ratio"]
        if row["model"] == "host":  # the host's own per-step cost: informative, no goal
            rows.append(figure(f"train.py over plain, {label}: added host time", row["extra_ms_per_step"], None,
                               None, "ms/step"))  # fmt: skip
        else:
            rows.append(figure(f"plain / train.py steps/s, {label}", ratio, f"<= {OVERHEAD_GOAL}",
                               ratio <= OVERHEAD_GOAL))  # fmt: skip
            rows.append(figure(f"train.py steps/s, {label}", row["lightning_median"], None, None, "steps/s"))
        if "syncs_per_step" in row:
            rows.append(figure(f"host syncs per step, {label}", row["syncs_per_step"], "0", row["syncs_per_step"] == 0))
        if row["model"] == "dncnn" and row.get("compile"):
            rate = row["lightning_median"]
            rows.append(figure("DnCNN-S b128 40² bf16 through train.py (compiled)", rate, f">= {DNCNN_RATE_GOAL:g}",
                               rate >= DNCNN_RATE_GOAL, "steps/s"))  # fmt: skip
    return rows


def tiling_figures(report: dict[str, Any] | None) -> list[dict[str, Any]]:
    rows = []
    goal = (report or {}).get("goal", {})
    for row in (report or {}).get("rows", []):
        for batch, result in row["tiled"].items():
            rows.append(figure(f"{row['model']} tiles x{batch}: speed / whole", result["speed_ratio"],
                               f">= {goal.get('speed')}", None))  # fmt: skip
            rows.append(figure(f"{row['model']} tiles x{batch}: memory / whole", result["memory_ratio"],
                               f"<= {goal.get('memory')}", None))  # fmt: skip
        best = row.get("best_tile_batch")
        rows.append(figure(f"{row['model']}: some tile batch meets both (best: x{best})", best, "a batch meeting both",
                           row.get("goal_met")))  # fmt: skip
    return rows


def parity_figures(report: dict[str, Any] | None) -> list[dict[str, Any]]:
    rows = []
    for row in (report or {}).get("rows", []):
        name = f"parity {row['set']} {row['device']} {row['precision']}: PSNR {row['test/psnr']:.4f}"
        met = row.get("within_tolerance")
        goal = f"|diff| vs CPU <= {PARITY_TOLERANCE:g}" if row["precision"] == "fp32" else None
        rows.append(figure(name, row.get("max_abs_diff_vs_cpu"), goal, met))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--device-file", type=Path)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--text", type=Path, required=True)
    args = parser.parse_args()
    steps = []
    for line in (args.work / "steps.txt").read_text().splitlines() if (args.work / "steps.txt").is_file() else []:
        name, status, seconds = line.split()
        state = "skipped" if status == "skipped" else ("ok" if status == "0" else f"exit {status}")
        steps.append({"step": name, "status": state, "seconds": int(seconds)})
    figures = [
        *overhead_figures(read(args.work / "overhead.json")),
        *overhead_figures(read(args.work / "compiled.json")),
        *tiling_figures(read(args.work / "tiling.json")),
        *parity_figures(read(args.work / "parity.json")),
    ]
    for row in steps:  # a step without its JSON: its goals are not met, and the table says why
        if read(args.work / f"{row['step']}.json") is None:
            figures.append(figure(f"{row['step']}: no figures ({row['status']})", None, "the step finishes", False))
    figures.append(figure("the whole check", args.seconds, "<= 180 s", None if args.seconds is None else
                          args.seconds <= 180, "s"))  # fmt: skip
    device = args.device_file.read_text().strip() if args.device_file and args.device_file.is_file() else "?"
    summary = {"device": device, "steps": steps, "figures": figures,
               "goals_met": sum(f["met"] is True for f in figures),
               "goals_not_met": [f["figure"] for f in figures if f["met"] is False]}  # fmt: skip
    args.json.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    table = Table(title=f"GPU check on {device}")
    for column in ("figure", "value", "goal", "met"):
        table.add_column(column, justify="left" if column in ("figure", "goal") else "right")
    for item in figures:
        value = item["value"]
        shown = f"{value:.4g} {item['unit']}".strip() if isinstance(value, float) else str(value)
        table.add_row(item["figure"], shown, item["goal"] or "-", {None: "-", True: "yes", False: "NO"}[item["met"]])
    steps_table = Table(title="steps")
    for column in ("step", "status", "seconds"):
        steps_table.add_column(column)
    for row in steps:
        steps_table.add_row(row["step"], row["status"], str(row["seconds"]))
    console = Console(record=True, width=140)
    console.print(table)
    console.print(steps_table)
    args.text.write_text(console.export_text())
    return 0 if all(s["status"] in ("ok", "skipped") for s in steps) else 1


if __name__ == "__main__":
    raise SystemExit(main())
