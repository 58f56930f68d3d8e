"""sweeps/*.yaml (W&B sweeps): every parameter value of every file composes into a valid train.py config, so a
typo in a sweep fails here rather than in every agent's first run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from omegaconf import OmegaConf

from tests.helpers import CONF, ROOT, compose_cfg

SWEEPS = sorted((ROOT / "sweeps").glob("*.yaml"))


def candidate_values(spec: dict[str, Any]) -> list[Any]:
    """The values an agent can pass for one parameter: its list, its single value, or its range's ends."""
    if "values" in spec:
        return list(spec["values"])
    if "value" in spec:
        return [spec["value"]]
    if {"min", "max"} <= spec.keys():
        return [spec["min"], spec["max"]]
    raise AssertionError(f"parameter spec {spec} has no values, value or min/max")


def test_one_sweep_per_model() -> None:
    models = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
    assert [p.stem for p in SWEEPS] == models


@pytest.mark.parametrize("sweep_file", SWEEPS, ids=lambda p: p.stem)
def test_sweep_composes_with_every_parameter(sweep_file: Path, tmp_path: Path) -> None:
    sweep = yaml.safe_load(sweep_file.read_text())
    assert sweep["program"] == "train.py" and (ROOT / sweep["program"]).is_file()
    assert sweep["method"] == "bayes"
    assert sweep["metric"] == {"name": "val/psnr", "goal": "maximize"}
    command = sweep["command"]
    assert command[:3] == ["${env}", "python", "${program}"] and command[-1] == "${args_no_hyphens}"
    fixed = command[3:-1]
    assert f"model={sweep_file.stem}" in fixed

    base = compose_cfg("train", fixed, tmp_path / "base")
    assert base.optimized_metric == sweep["metric"]["name"]
    for key, spec in sweep["parameters"].items():
        group = "/" in key  # a config group (model/loss): its option's config lands at the key with dots
        node = key.replace("/", ".")
        assert OmegaConf.select(base, node, default="missing") != "missing", f"{sweep_file.name}: no config key {key}"
        for value in candidate_values(spec):
            override = f"{key}={value}"  # what ${args_no_hyphens} passes
            cfg = compose_cfg("train", [*fixed, override], tmp_path / "run")
            resolved = OmegaConf.to_container(cfg, resolve=True)
            chosen = OmegaConf.select(OmegaConf.create(resolved), node)
            if group:
                expected = OmegaConf.to_container(OmegaConf.load(CONF / key / f"{value}.yaml"))
            else:
                expected = yaml.safe_load(value) if isinstance(value, str) else value
            assert chosen == expected, f"{sweep_file.name}: {override} composed to {chosen!r}"
