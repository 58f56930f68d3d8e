"""Every option of every config group composes and instantiates; the CLI's help and errors are useful."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from denoise.data.datamodule import DenoiseDataModule
from denoise.tasks.compose import build_trainer, instantiate_group
from denoise.training.module import DenoiseModule
from tests.helpers import CONF, ROOT, compose_cfg

GROUPS = [
    "data",
    "noise",
    "model",
    "optimizer",
    "scheduler",
    "objective",
    "callbacks",
    "logger",
    "trainer",
    "paths",
    "experiment",
    "debug",
]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def instantiate_everything(cfg) -> dict:
    """What tasks.train builds, short of fitting."""
    OmegaConf.resolve(cfg)
    objects = {
        "data": instantiate(cfg.data),
        "model": instantiate(cfg.model),
        "callbacks": instantiate_group(cfg.get("callbacks"), "callbacks"),
        "loggers": instantiate_group(cfg.get("logger"), "logger"),
    }
    trainer_cfg = cfg.trainer
    if trainer_cfg.get("accelerator") == "gpu" and not torch.cuda.is_available():
        trainer_cfg.accelerator = "cpu"  # everything else (strategy, precision, devices) stays as configured
    objects["trainer"] = build_trainer(trainer_cfg, objects["callbacks"], objects["loggers"])
    return objects


def required_paths(group: str, option: str, tmp_path: Path) -> list[str]:
    """The mandatory ``???`` paths of real-data configs, pointed at fixtures in their real layouts."""
    from tests.fixtures.real import make_sidd

    if (group, option) in {("data", "renoir"), ("data", "nind")}:
        return [f"data.root={tmp_path}"]  # layouts scan lazily, at setup
    if (group, option) in {("data", "real"), ("experiment", "seed_protocol")}:
        return [f"data.{name}_root={tmp_path}" for name in ("sidd", "renoir", "nind")]
    if (group, option) == ("data", "sidd") or (group == "experiment" and option.startswith("sidd_")):
        return [f"data.root={make_sidd(tmp_path / 'sidd', scenes=['0001_001_S6_00100_00060_3200_L'])}"]
    if (group, option) == ("data", "paired"):
        return [f"data.noisy_dir={tmp_path / 'noisy'}", f"data.clean_dir={tmp_path / 'clean'}"]
    if (group, option) in {("data", "noisy_folder"), ("experiment", "apbsn_cpu")}:
        return [f"data.noisy_dir={tmp_path / 'noisy'}"]
    if (group, option) == ("data", "noisy_pairs"):
        return [f"data.noisy_dir={tmp_path / 'first'}", f"data.second_dir={tmp_path / 'second'}"]
    if (group, option) == ("objective", "apbsn"):
        return ["model=bsn_small"]  # a blind-spot network: any other is refused (tests/unit/models/test_bsn.py)
    if (group, option) == ("experiment", "apbsn_sidd"):
        return [f"data.root={make_sidd(tmp_path / 'sidd', scenes=['0001_001_S6_00100_00060_3200_L'])}"]
    return []


CASES = [(group, option) for group in GROUPS for option in options(group)]


@pytest.mark.parametrize(("group", "option"), CASES, ids=[f"{g}={o}" for g, o in CASES])
def test_every_option_composes_and_instantiates(group: str, option: str, tmp_path: Path) -> None:
    cfg = compose_cfg("train", [f"{group}={option}", *required_paths(group, option, tmp_path)], tmp_path / "run")
    objects = instantiate_everything(cfg)
    assert isinstance(objects["data"], DenoiseDataModule)
    assert isinstance(objects["model"], DenoiseModule)
    assert isinstance(objects["trainer"], L.Trainer)
    image = torch.rand(1, objects["data"].channels, 16, 16)  # the network follows data.channels
    with torch.no_grad():
        assert objects["model"].eval()(image).shape == image.shape


def test_option_lists_are_complete() -> None:
    """The groups the foundation promises, with the options it promises."""
    assert {"default", "cpu", "gpu", "ddp", "ddp_sim"} <= set(options("trainer"))
    assert {"wandb", "csv", "tensorboard", "none"} <= set(options("logger"))
    assert {"fast_dev_run", "overfit", "limit"} <= set(options("debug"))
    assert {"gaussian", "poisson_gaussian"} <= set(options("noise"))
    assert {"synthetic", "sidd", "renoir", "nind", "paired", "real", "noisy_folder"} <= set(options("data"))
    assert set(options("objective")) == {"supervised", "noise2noise", "neighbor2neighbor", "noise2void", "apbsn"}
    assert {"noisy_pairs", "noisy_folder"} <= set(options("data"))
    assert {"adam", "adamw"} <= set(options("optimizer"))
    assert {"cosine", "step", "constant"} <= set(options("scheduler"))
    assert "quickstart" in options("experiment")


def test_grayscale_needs_no_model_override(tmp_path: Path) -> None:
    cfg = compose_cfg("train", ["data.grayscale=true", "model=rednet", "model.net.depth=30"], tmp_path / "run")
    objects = instantiate_everything(cfg)
    assert objects["data"].channels == 1
    assert sum(p.numel() for p in objects["model"].net.parameters()) == 1_035_201


def test_quickstart_experiment_is_the_default_run(tmp_path: Path) -> None:
    default = compose_cfg("train", [], tmp_path / "a")
    recipe = compose_cfg("train", ["experiment=quickstart"], tmp_path / "b")
    assert default.seed == recipe.seed
    for key in ("data", "noise", "model", "trainer"):
        assert OmegaConf.to_container(default[key]) == OmegaConf.to_container(recipe[key]), key
    assert default.model.net.depth == 20 and default.model.net.channels == 16 and default.noise.sigma == 25
    assert default.model.optimizer.lr == 2e-3 and default.data.batch_size == 8


def test_evaluate_config_composes(tmp_path: Path) -> None:
    cfg = compose_cfg("evaluate", ["ckpt_path=x.ckpt", "model=rednet", "data.grayscale=true"], tmp_path / "run")
    assert cfg.task_name == "evaluate" and cfg.model.net.in_channels == 1
    assert "model" not in compose_cfg("evaluate", ["ckpt_path=x.ckpt"], tmp_path / "run2")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_help_lists_the_groups() -> None:
    result = _cli("--help")
    assert result.returncode == 0
    groups = (
        "model: autoencoder, bsn, bsn_small, dncnn, drunet, drunet_small, ffdnet, mwcnn, nafnet, nafnet_small, "
        "pridnet, rednet, rednet_small, restormer, restormer_small, swinir, swinir_small",
        "objective: apbsn, neighbor2neighbor, noise2noise, noise2void, supervised",
        "trainer: cpu, ddp, ddp_sim, default, gpu",
        "logger: csv, none, tensorboard, wandb",
    )
    for line in groups:
        assert line in result.stdout


@pytest.mark.slow
def test_cfg_job_prints_the_composed_config() -> None:
    result = _cli("--cfg", "job", "model=rednet", "model.net.depth=20", "noise.sigma=50")
    assert result.returncode == 0
    cfg = OmegaConf.create(result.stdout)
    assert cfg.model.net.depth == 20 and cfg.noise.sigma == 50


@pytest.mark.parametrize(
    ("override", "listed"),
    [("model=nope", "rednet"), ("noise=speckle", "poisson_gaussian"), ("trainer=tpu", "ddp_sim")],
)
@pytest.mark.slow
def test_unknown_option_lists_the_available_ones(override: str, listed: str) -> None:
    result = _cli(override)
    assert result.returncode != 0
    group, option = override.split("=")
    assert f"Could not find '{group}/{option}'" in result.stderr
    assert "Available options" in result.stderr and listed in result.stderr


def test_mixed_precision_follows_the_hardware(monkeypatch: pytest.MonkeyPatch) -> None:
    """trainer=gpu|ddp: bf16-mixed where supported, 16-mixed on older GPUs, full precision on CPU."""
    import torch

    from denoise.config.resolvers import mixed_precision

    assert mixed_precision("cpu") == "32-true"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert mixed_precision("gpu") == "bf16-mixed"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert mixed_precision("gpu") == "16-mixed"
    assert mixed_precision("cpu") == "32-true"


@pytest.mark.parametrize(
    ("trainer", "overrides", "expected"),
    [
        ("gpu", [], {"accelerator": "gpu", "devices": 1}),
        ("ddp", [], {"strategy": "ddp", "devices": 4, "num_nodes": 1, "sync_batchnorm": False}),
        ("ddp", ["trainer.accelerator=cpu", "trainer.devices=2"], {"precision": "32-true", "devices": 2}),
        ("ddp", ["trainer.precision=16-mixed", "trainer.num_nodes=2"], {"precision": "16-mixed", "num_nodes": 2}),
        ("ddp_sim", [], {"strategy": "ddp", "accelerator": "cpu", "devices": 2}),
    ],
)
def test_trainer_configs(trainer: str, overrides: list[str], expected: dict, tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    cfg = compose_cfg("train", [f"trainer={trainer}", *overrides], tmp_path)
    resolved = OmegaConf.to_container(cfg.trainer, resolve=True)
    assert {k: resolved[k] for k in expected} == expected


def test_slurm_launcher_ties_the_request_to_the_trainer(tmp_path: Path) -> None:
    """launcher=slurm: tasks per node = GPUs per node = trainer.devices, nodes = trainer.num_nodes."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    GlobalHydra.instance().clear()
    overrides = [
        "launcher=slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2", "slurm.partition=gpu",
        "slurm.account=proj", "slurm.time_min=1440", "slurm.mem_gb=64", "slurm.cpus_per_task=8",
        "slurm.setup=[module load cuda]",
    ]  # fmt: skip
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher["_target_"].endswith("SlurmLauncher")
    assert (launcher["nodes"], launcher["tasks_per_node"], launcher["gpus_per_node"]) == (2, 4, 4)
    assert (launcher["partition"], launcher["account"], launcher["timeout_min"]) == ("gpu", "proj", 1440)
    assert (launcher["mem_gb"], launcher["cpus_per_task"], launcher["setup"]) == (64, 8, ["module load cuda"])
    assert launcher["max_num_timeout"] == 0 and launcher["additional_parameters"] == {"signal": "USR1@120"}
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        bad = compose("train", overrides=["launcher=slurm", "trainer.devices=auto"], return_hydra_config=True)
    with pytest.raises(Exception, match=r"trainer\.devices as a number"):
        OmegaConf.to_container(bad.hydra.launcher, resolve=True)
    GlobalHydra.instance().clear()
