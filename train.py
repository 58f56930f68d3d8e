"""Train a denoiser: ``python train.py [model=<arch>] [data=<dataset>] [experiment=<recipe>] [key=value ...]``."""

import hydra
from omegaconf import DictConfig

import denoise  # noqa: F401  (registers the config resolvers)
from denoise.tasks import train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    return train(cfg)


if __name__ == "__main__":
    main()
