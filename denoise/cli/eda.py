"""``denoise-eda data=<config> [data.root=PATH] [eda.max_pairs=N]``: the exploratory data analysis of a dataset
(eda.md, PNG plots, eda.json)."""

from __future__ import annotations

from denoise.cli import hydra_command

main = hydra_command("eda", "denoise.tasks.analysis:eda")

if __name__ == "__main__":
    main()
