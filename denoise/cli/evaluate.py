"""``denoise-evaluate [ckpt_path=A | ckpt_paths=[A,B]] [filters=all] [data=...]`` (or ``python evaluate.py``):
every filter and checkpoint on the same test images, as tables, plots and image grids."""

from __future__ import annotations

from denoise.cli import hydra_command

main = hydra_command("evaluate", "denoise.tasks.evaluation:evaluate")

if __name__ == "__main__":
    main()
