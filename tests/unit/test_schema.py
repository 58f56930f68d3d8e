"""Config values checked against their kinds before anything starts: every shipped config passes, and wrong
values are named (key, value, what was expected) in one message before a logger or the data is touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from denoise.tasks.schema import check_types
from tests.helpers import CONF, TINY, compose_cfg, run_cli


def _names(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize(
    "overrides",
    [[f"experiment={name}"] for name in _names("experiment")]
    + [[f"model={name}"] for name in _names("model")]
    + [[f"data={name}"] for name in _names("data")]
    + [[f"trainer={name}"] for name in _names("trainer")]
    + [[f"debug={name}"] for name in _names("debug")],
)
def test_every_shipped_config_passes(overrides: list[str], tmp_path: Path) -> None:
    check_types(compose_cfg("train", overrides, tmp_path / "run"), "train.py")


def test_evaluate_and_the_tiny_test_config_pass(tmp_path: Path) -> None:
    check_types(compose_cfg("evaluate", ["filters=all"], tmp_path / "e"), "evaluate.py")
    check_types(compose_cfg("train", TINY, tmp_path / "t"), "train.py")


def test_every_wrong_value_is_named_at_once(tmp_path: Path) -> None:
    overrides = ["trainer.max_epochs=abc", "data.batch_size=0", "noise.sigma=[50,10]", "model.optimizer.lr=-1",
                 "trainer.precision=true", "data.num_workers=many", "inference.tile=0.5"]  # fmt: skip
    with pytest.raises(ValueError) as caught:
        check_types(compose_cfg("train", overrides, tmp_path / "run"), "train.py")
    lines = str(caught.value).splitlines()
    assert lines[0] == "train.py: 7 config value(s) of the wrong kind, found before anything ran:"
    assert lines[1:] == [
        "  trainer.max_epochs='abc' (a string): expected an integer (-1: no limit) or null",
        "  trainer.precision=True (a boolean): expected e.g. 32-true, bf16-mixed, 16-mixed",
        "  data.batch_size=0 (an integer): expected an integer >= 1",
        "  data.num_workers='many' (a string): expected an integer >= 0 or auto",
        "  noise.sigma=[50, 10] (a list): expected a sigma >= 0 on the 0-255 scale, or [low, high]",
        "  model.optimizer.lr=-1 (an integer): expected a number >= 0",
        "  inference.tile=0.5 (a number): expected an integer >= 0 (0: whole images)",
    ]


@pytest.mark.slow
def test_a_wrong_value_stops_train_py_before_wandb_starts(tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = run_cli("train.py", *TINY, "logger=wandb", "trainer.max_epochs=abc", run_dir=run)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "trainer.max_epochs='abc' (a string): expected an integer (-1: no limit) or null" in result.stderr
    assert not (run / "wandb").exists() and not (run / "checkpoints").exists()
