"""Test a checkpoint: ``python evaluate.py ckpt_path=PATH [data=<dataset>] [key=value ...]``."""

import hydra
from omegaconf import DictConfig

import denoise  # noqa: F401  (registers the config resolvers)
from denoise.tasks import evaluate


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
