"""conf/experiment recipes: each composes with the published settings it claims, EMA on; the seed's protocol
runs end to end on fixtures of SIDD + RENOIR Mi3 + NIND."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from denoise.tasks import train
from tests.fixtures.real import make_nind, make_renoir, make_sidd
from tests.helpers import CONF, compose_cfg, read_results

#: recipe -> (network, patch, per-device batch, loss, optimizer, lr, scheduler, epochs)
PUBLISHED = {
    "sidd_pridnet": ("PRIDNet", 256, 2, "l1", "Adam", 1e-4, "piecewise", 4000),
    "sidd_mwcnn": ("MWCNN", 240, 24, "l2", "Adam", 1e-3, "exponential_decay", 40),
    "sidd_rednet": ("REDNet", 50, 64, "l2", "Adam", 1e-4, "constant", 200),
    "sidd_nafnet": ("NAFNet", 256, 32, "psnr", "AdamW", 1e-3, "cosine_with_warmup", 200),
}


def loss_name(cfg) -> str:
    """The option of conf/model/loss/ whose spec the composed ``model.loss`` is."""
    spec = OmegaConf.to_container(cfg.model.loss)
    options = {p.stem: OmegaConf.to_container(OmegaConf.load(p)) for p in (CONF / "model" / "loss").glob("*.yaml")}
    (name,) = [name for name, option in options.items() if option == spec]
    return name


@pytest.mark.parametrize("recipe", sorted(PUBLISHED))
def test_sidd_recipes_compose_with_their_published_settings(recipe: str, tmp_path: Path) -> None:
    cfg = compose_cfg("train", [f"experiment={recipe}", "data.root=/data/SIDD_Medium_Srgb"], tmp_path / "run")
    net, patch, batch, loss, optimizer, lr, scheduler, epochs = PUBLISHED[recipe]
    assert cfg.model.net._target_.endswith(f".{net}")
    assert (cfg.data.patch_size, cfg.data.batch_size, loss_name(cfg)) == (patch, batch, loss)
    assert cfg.model.optimizer._target_ == f"torch.optim.{optimizer}" and cfg.model.optimizer.lr == lr
    assert cfg.model.scheduler._target_ == f"denoise.training.optim.{scheduler}" and cfg.trainer.max_epochs == epochs
    assert "ema" in cfg.callbacks and "model_checkpoint" in cfg.callbacks  # EMA on, the defaults kept
    assert cfg.trainer.accelerator == "gpu" and cfg.data.datasets.sidd.root == "/data/SIDD_Medium_Srgb"
    assert cfg.data.patch_size % size_multiple(cfg) == 0
    if recipe == "sidd_nafnet":
        assert list(cfg.model.optimizer.betas) == [0.9, 0.9] and cfg.model.optimizer.weight_decay == 0.0
        assert cfg.model.scheduler.min_lr_ratio == pytest.approx(1e-7 / 1e-3) and not cfg.data.augment
        assert cfg.seed == 10
    if recipe == "sidd_pridnet":
        # an epoch of 320 crops in batches of 2 (SIDD Medium's 160 scenes), 4000 of them: 640k iterations
        assert cfg.data.samples_per_epoch // cfg.data.batch_size * cfg.trainer.max_epochs == 640_000


def size_multiple(cfg) -> int:
    """The network's input-size multiple (MWCNN 8, NAFNet 16, others 1) for the recipe's crops."""
    from denoise.config.specs import build

    spec = {k: v for k, v in cfg.model.net.items()}
    spec["in_channels"] = 3
    return int(getattr(build(spec, what="model.net"), "size_multiple", 1))


def test_seed_protocol_runs_on_sidd_renoir_mi3_and_nind(tmp_path: Path) -> None:
    roots = {
        "sidd": make_sidd(tmp_path / "SIDD_Small_sRGB_Only", release="small"),
        "renoir": make_renoir(tmp_path / "RENOIR") / "Mi3_Aligned",
        "nind": make_nind(tmp_path / "NIND"),
    }
    overrides = [
        "experiment=seed_protocol",
        *[f"data.{name}_root={root}" for name, root in roots.items()],
        # tiny: 32x32 photos, a small network, one epoch, on the CPU
        "data.resize=32",
        "data.patch_size=32",
        "data.batch_size=4",
        "data.num_workers=0",
        "data.pin_memory=false",
        "model=rednet_small",
        "model.net.channels=8",
        "trainer.max_epochs=1",
        "trainer.accelerator=cpu",
        "logger=none",
        "~callbacks.rich_progress_bar",
    ]
    cfg = compose_cfg("train", overrides, tmp_path / "run")
    assert cfg.data.samples_per_epoch is None and cfg.data.test_split == "val" and not cfg.data.store.enabled
    run = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(cfg)
    results = read_results(run)
    for name in roots:
        assert np.isfinite(results[f"test/{name}/psnr"])
    from hydra.utils import instantiate

    datamodule = instantiate(compose_cfg("train", overrides, tmp_path / "again").data)
    datamodule.setup("fit")
    train_pairs = sum(len(layout.splits()["train"]) for layout in datamodule.layouts.values())
    val_pairs = sum(len(layout.splits()["val"]) for layout in datamodule.layouts.values())
    assert len(datamodule.datasets["train"]) == train_pairs  # an epoch is one pass over the training photos
    assert results["global_step"] == train_pairs // 4
    sample = datamodule.datasets["train"][0]
    assert sample["noisy"].shape == (3, 32, 32)  # the whole photo, resized
    datamodule.setup("test")
    assert len(datamodule.datasets["test"]) == val_pairs  # the 20% held out is the test set
    assert val_pairs / (val_pairs + train_pairs) == pytest.approx(0.2, abs=0.15)


#: gray sigma-25 paper recipes -> (network, depth or None, patch, batch, sigma)
GRAY_RECIPES = {
    "dncnn_s_gray25": ("DnCNN", 17, 40, 128, 25),
    "dncnn_b_gray": ("DnCNN", 20, 50, 128, [0, 55]),
    "red30_gray25": ("REDNet", 30, 50, 64, 25),
    "mwcnn_gray25": ("MWCNN", None, 128, 24, 25),
    "ffdnet_gray": ("FFDNet", None, 50, 128, [0, 75]),
}


@pytest.mark.parametrize("recipe", sorted(GRAY_RECIPES))
def test_gray_paper_recipes_compose_on_the_standard_sets(recipe: str, tmp_path: Path) -> None:
    """DnCNN-S/B, RED30 and MWCNN on Train400 (tested on BSD68) within the 8-minute GPU budget they state."""
    cfg = compose_cfg("train", [f"experiment={recipe}"], tmp_path / "run")
    net, depth, patch, batch, sigma = GRAY_RECIPES[recipe]
    assert cfg.model.net._target_.endswith(f".{net}") and cfg.model.net.in_channels == 1
    if depth is not None:
        assert cfg.model.net.depth == depth
    assert (cfg.data.patch_size, cfg.data.batch_size, loss_name(cfg)) == (patch, batch, "l2")
    assert (list(cfg.noise.sigma) if isinstance(sigma, list) else cfg.noise.sigma) == sigma
    assert [Path(d).name for d in cfg.data.train_dirs] == ["train400"] and Path(cfg.data.test_dirs[0]).name == "bsd68"
    assert cfg.trainer.max_time == "00:00:07:00" and cfg.data.on_device and cfg.trainer.accelerator == "gpu"
    assert cfg.model.compile == recipe.startswith("dncnn")  # the DnCNNs on their fastest measured setting
    assert cfg.trainer.min_epochs is None  # the 7-minute budget holds inside the first epoch too
    assert cfg.data.patch_size % size_multiple(cfg) == 0


def test_the_colour_ffdnet_recipe_trains_on_cbsd432_and_tests_on_cbsd68(tmp_path: Path) -> None:
    """FFDNet colour: the paper's 12 layers of 96 channels on 3-channel data, blind in [0, 75], the gray recipe's
    budget, CBSD432 for training (Kodak24 to validate), CBSD68 to test."""
    cfg = compose_cfg("train", ["experiment=ffdnet_color"], tmp_path / "run")
    assert cfg.model.net._target_.endswith(".FFDNet") and cfg.model.net.in_channels == 3
    assert (cfg.model.net.channels, cfg.model.net.layers) == (96, 12) and list(cfg.noise.sigma) == [0, 75]
    assert [Path(d).name for d in (*cfg.data.train_dirs, *cfg.data.val_dirs, *cfg.data.test_dirs)] == [
        "cbsd432", "kodak24", "cbsd68"]  # fmt: skip
    assert (cfg.data.patch_size, cfg.data.batch_size, cfg.trainer.max_time) == (50, 128, "00:00:07:00")
    assert "color" in cfg.tags and cfg.data.on_device
