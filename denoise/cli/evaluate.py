"""``denoise-evaluate [ckpt_path=A | ckpt_paths=[A,B]] [filters=all] [data=...]`` (or ``python evaluate.py``):
every filter and checkpoint on the same test images, as tables, plots and image grids."""

from __future__ import annotations

from denoise.cli import hydra_command
from denoise.tasks.evaluation import evaluate as job

main = hydra_command("evaluate", job)

if __name__ == "__main__":
    main()
