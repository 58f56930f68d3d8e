"""What the tests share (imported, not injected): the repository's paths, tiny run settings, composing configs
the way the entry points do, running the commands, reading results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf, open_dict

import denoise  # noqa: F401  (registers resolvers)
from denoise.tasks import compose_config

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
SHARED_DATA = ROOT.parent / "shared" / "data"

#: a run small enough for seconds on a CPU: RED10 with 8 channels, 2 batches of 4 crops, 1 epoch
TINY = [
    "model.net.depth=10",
    "model.net.channels=8",
    "data.patch_size=32",
    "data.batch_size=4",
    "data.samples_per_epoch=8",
    "trainer.max_epochs=1",
    "trainer.accelerator=cpu",
    "~callbacks.rich_progress_bar",
    "~callbacks.model_summary",
]


#: TINY for the real-pair datasets: small crops, a patch store that fits the fixtures' small images
TINY_REAL = [
    "data.patch_size=32",
    "data.batch_size=4",
    "data.samples_per_epoch=8",
    "data.num_workers=0",
    "data.store.size=48",
    "data.store.stride=32",
    "data.pin_memory=false",
    "model.net.depth=10",
    "model.net.channels=8",
    "trainer.max_epochs=1",
    "logger=none",
    "~callbacks.rich_progress_bar",
]


def compose_cfg(config_name: str, overrides: Sequence[str], out_dir: Path, log_dir: Path | None = None) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` as ``@hydra.main`` would, with the run directory at ``out_dir`` (logs
    and caches beside it, so tests never write into the checkout)."""
    cfg = compose_config(config_name, list(overrides), out_dir)
    with open_dict(cfg):
        cfg.paths.log_dir = str(log_dir or out_dir.parent / "logs")
        cfg.paths.cache_dir = str(out_dir.parent / "cache")
    return cfg


def run_cli(
    script: str, *overrides: str, run_dir: Path, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``python <script> overrides...`` from the repo root with its Hydra run directory at ``run_dir`` (and
    ``env`` added to the environment)."""
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1", "COLUMNS": "160", **(env or {})}
    cmd = [sys.executable, str(ROOT / script), *overrides, f"hydra.run.dir={run_dir}"]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def read_results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def with_values(cfg: DictConfig, *assignments: str) -> DictConfig:
    """``cfg`` with plain ``key=value`` overrides applied (values parsed as YAML): for the ``cfg_train`` fixture,
    which is composed once, where a test changes values rather than config groups."""
    with open_dict(cfg):
        for assignment in assignments:
            key, _, value = assignment.partition("=")
            OmegaConf.update(cfg, key, yaml.safe_load(value), merge=False)
    return cfg


def run_quick_job(script: str, out: Path, cwd: Path, timeout: float, **env: str) -> subprocess.CompletedProcess:
    """``QUICK=1 bash bench/<script>`` with ``OUT`` and the standard sets as ``DATA_DIR``: a GPU job's smoke run."""
    environment = {**os.environ, "QUICK": "1", "OUT": str(out), "DATA_DIR": str(SHARED_DATA), **env}
    return subprocess.run(["bash", str(ROOT / "bench" / script)], env=environment, capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)  # fmt: skip
