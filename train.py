"""Train a denoiser: ``python train.py [model=<arch>] [data=<dataset>] [experiment=<recipe>] [key=value ...]``
(the same command as ``denoise-train``: :mod:`denoise.cli.train`)."""

from denoise.cli.train import main

if __name__ == "__main__":
    main()
