"""``denoise-eda data=<config> [data.root=PATH] [eda.max_pairs=N]``: the exploratory data analysis of a dataset
(eda.md, PNG plots, eda.json)."""

from __future__ import annotations

from denoise.cli import hydra_command
from denoise.tasks.analysis import eda as job

main = hydra_command("eda", job)

if __name__ == "__main__":
    main()
