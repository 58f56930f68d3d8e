"""``denoise-train [group=option ...] [key=value ...]`` (or ``python train.py``): train a denoiser, test it, write
results.json; ``-m`` for multiruns, sweeps and SLURM."""

from __future__ import annotations

from denoise.cli import hydra_command
from denoise.tasks.training import train as job

main = hydra_command("train", job)

if __name__ == "__main__":
    main()
