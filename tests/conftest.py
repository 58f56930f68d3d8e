"""Fixtures only (helpers live in tests/helpers.py): W&B offline for every test, Hydra's global state cleared
after each, the markers by folder, and ``cfg_train``, the tiny training config composed once per session."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ["WANDB_MODE"] = "offline"  # tests never reach a W&B server
if os.environ.get("PYTEST_XDIST_WORKER"):  # the suite runs on every core (pyproject: -n auto): a thread per worker
    os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("WANDB_SILENT", "true")

from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from tests.fixtures.http_server import Server
from tests.helpers import TINY, compose_cfg

TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """tests/e2e/ is end-to-end (``slow``), tests/cluster/ needs a SLURM cluster (``cluster`` and ``slow``):
    ``pytest -m "not slow"`` is the quick loop."""
    for item in items:
        parts = Path(item.fspath).resolve().relative_to(TESTS).parts
        if parts[0] == "e2e":
            item.add_marker(pytest.mark.slow)
        elif parts[0] == "cluster":
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(autouse=True)
def _clear_hydra() -> Iterator[None]:
    yield
    GlobalHydra.instance().clear()


@pytest.fixture(scope="session")
def cfg_train_global(tmp_path_factory: pytest.TempPathFactory) -> tuple[DictConfig, object]:
    """``conf/train.yaml`` with the tiny settings and no logger, composed once for the whole session."""
    cfg = compose_cfg("train", [*TINY, "logger=none"], tmp_path_factory.mktemp("cfg_train") / "run")
    return cfg, HydraConfig.get()


@pytest.fixture
def cfg_train(cfg_train_global: tuple[DictConfig, object], tmp_path: Path) -> DictConfig:
    """A copy of the session's training config whose run directory (and logs, caches) is this test's tmp_path."""
    cfg, hydra_cfg = cfg_train_global
    cfg = copy.deepcopy(cfg)
    hydra_cfg = copy.deepcopy(hydra_cfg)
    run = tmp_path / "run"
    run.mkdir(parents=True, exist_ok=True)
    with read_write(hydra_cfg):
        hydra_cfg.runtime.output_dir = str(run)
    HydraConfig.instance().set_config(OmegaConf.create({"hydra": hydra_cfg}))
    with open_dict(cfg):
        cfg.paths.log_dir = str(tmp_path / "logs")
        cfg.paths.cache_dir = str(tmp_path / "cache")
    return cfg


@pytest.fixture
def server() -> Iterator[Server]:
    """A local HTTP server (tests.fixtures.http_server.Server), for downloads."""
    serving = Server()
    yield serving
    serving.httpd.shutdown()
