"""``denoise-prepare data=sidd data.root=/data/SIDD_Medium_Srgb [data.store.size=512 ...]``: build a dataset's
crop-once patch store ahead of training."""

from __future__ import annotations

from denoise.cli import hydra_command

main = hydra_command("train", "denoise.tasks.analysis:prepare")

if __name__ == "__main__":
    main()
