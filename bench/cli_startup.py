"""How fast every console script answers ``--help`` (the goal: under 2 s each on the 2-core machine), and the model
table without ``--time``: each a fresh process, interleaved round by round, median and spread of ``--runs``.

    python bench/cli_startup.py [--runs 5] [--json bench/results/cli_startup.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = [[f"denoise-{name}", "--help"] for name in
            ("train", "evaluate", "eda", "prepare", "models", "predict", "export", "zoo", "data")]  # fmt: skip
COMMANDS.append(["denoise-models"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "cli_startup.json")
    args = parser.parse_args()
    missing = [command[0] for command in COMMANDS if shutil.which(command[0]) is None]
    if missing:
        parser.error(f"{missing} not on PATH: pip install -e . first")
    seconds: dict[str, list[float]] = {" ".join(c): [] for c in COMMANDS}
    for _ in range(args.runs):
        for command in COMMANDS:
            start = time.perf_counter()
            subprocess.run(command, capture_output=True, check=True, cwd=ROOT)
            seconds[" ".join(command)].append(time.perf_counter() - start)
    rows = {name: {"median_s": statistics.median(v), "min_s": min(v), "max_s": max(v)} for name, v in seconds.items()}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"runs": args.runs, "commands": rows}, indent=2) + "\n")
    table = Table(title=f"command start-up, {args.runs} runs each (seconds)")
    for column in ("command", "median", "spread"):
        table.add_column(column, justify="left" if column == "command" else "right")
    for name, row in rows.items():
        table.add_row(name, f"{row['median_s']:.2f}", f"{row['min_s']:.2f}-{row['max_s']:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
