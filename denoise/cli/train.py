"""``denoise-train [group=option ...] [key=value ...]`` (or ``python train.py``): train a denoiser, test it, write
results.json; ``-m`` for multiruns, sweeps and SLURM."""

from __future__ import annotations

from denoise.cli import hydra_command

main = hydra_command("train", "denoise.tasks.training:train")

if __name__ == "__main__":
    main()
