"""Compare filters and checkpoints: ``python evaluate.py [ckpt_path=...] [filters=all] [data=...]`` (the same
command as ``denoise-evaluate``: :mod:`denoise.cli.evaluate`)."""

from denoise.cli.evaluate import main

if __name__ == "__main__":
    main()
