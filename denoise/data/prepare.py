"""Build a dataset's crop-once patch store ahead of training:

    python -m denoise.data.prepare data=sidd data.root=/data/SIDD_Medium_Srgb [data.store.size=512 ...]

Training builds it on first use anyway (on one process per node under DDP); this command does it up front,
with a progress bar, and prints where the store is and how big it is.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

import denoise  # noqa: F401  (registers the config resolvers)
from denoise.tasks import instantiate


@hydra.main(version_base="1.3", config_path="../../conf", config_name="train")
def main(cfg: DictConfig) -> None:
    OmegaConf.resolve(cfg)
    datamodule = instantiate(cfg.data)
    if not hasattr(datamodule, "patch_stores"):
        raise ValueError(f"data={cfg.data._target_}: this dataset has no patch store (only real-pair datasets do)")
    stores = datamodule.patch_stores()
    table = Table(title="patch stores")
    for column in ("dataset", "pairs", "sub-images", "size", "dtype", "GB", "folder"):
        table.add_column(column)
    for name, store in stores.items():
        size = sum(f.stat().st_size for f in store.folder.iterdir()) / 1e9
        index = store.index
        table.add_row(name, str(len(index["pairs"])), str(index["patches"]), str(index["size"]), index["dtype"],
                      f"{size:.3f}", str(store.folder))  # fmt: skip
    Console().print(table)


if __name__ == "__main__":
    main()
