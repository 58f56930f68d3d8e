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


@pytest.mark.parametrize(
    ("added", "closest"),
    [
        ("+foo=1", None),
        ("+trainer.max_epoch=3", "trainer.max_epochs"),
        ("+seeds=3", "seed"),
        ("+model.net.chanels=16", "model.net.channels"),
        ("+data.store.sise=64", None),
    ],
)
def test_a_key_added_that_nothing_reads_is_refused_with_the_closest(tmp_path: Path, added: str, closest: str) -> None:
    """The report's case: +foo=1 (any +key typo) trained with the defaults, and Hydra's own hint for a misspelt key
    (+trainer.max_epoch=3) leads straight into it."""
    overrides = ["data=sidd", "data.root=/x", added] if added.startswith("+data.store") else [added]
    with pytest.raises(ValueError) as caught:
        check_types(compose_cfg("train", overrides, tmp_path / "run"), "train.py")
    message = str(caught.value)
    assert message.startswith("train.py: 1 key(s) added with + that nothing reads, found before anything ran:")
    key = added[1:].partition("=")[0]
    assert f"{added}: nothing reads '{key}' (the run would go on with the defaults)" in message
    if closest:
        assert f"did you mean {closest}=...?" in message


def test_keys_added_that_a_part_reads_pass(tmp_path: Path) -> None:
    """An argument a part takes (Lightning's Trainer, a callback added with its _target_), a value that another
    interpolates."""
    added = ["+trainer.profiler=simple", "+callbacks.kill._target_=tests.fixtures.signals.SignalAt",
             "+callbacks.kill.epoch=1", "+my_root=/x", "data.train_dirs=[${my_root}]"]  # fmt: skip
    check_types(compose_cfg("train", [*TINY, *added], tmp_path / "run"), "train.py")


def test_launcher_slurm_without_slurm_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The report's case: launcher=slurm without SLURM was a 25-line traceback."""
    from denoise.cli import check_environment

    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch
    with pytest.raises(SystemExit) as exited:
        check_environment(["-m", "launcher=slurm"])
    assert exited.value.code == 2
    assert "error: launcher=slurm submits the runs to SLURM, and this machine has none (no sbatch on PATH)" in (
        capsys.readouterr().err
    )
    unreachable = "echo 'sinfo: error: Unable to contact slurm controller' >&2; exit 1"
    for name, script in (("sbatch", "exit 0"), ("sinfo", unreachable)):
        (tmp_path / name).write_text(f"#!/bin/sh\n{script}\n")
        (tmp_path / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    with pytest.raises(SystemExit):
        check_environment(["-m", "launcher=slurm"])
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "SLURM does not answer on this machine (sinfo: sinfo: error: Unable to contact slurm controller)" in err


@pytest.mark.slow
def test_a_wrong_value_is_refused_before_pytorch_is_imported(tmp_path: Path) -> None:
    """The report: the config check ran after the heavy imports (36 s on a loaded machine, Hydra's own errors in
    2 s). The values of the schema and the keys still to give are checked before PyTorch loads."""
    import os
    import subprocess
    import sys

    from tests.helpers import ROOT

    command = [sys.executable, "-X", "importtime", str(ROOT / "train.py"), "trainer.max_epochs=abc"]
    command.append(f"hydra.run.dir={tmp_path / 'run'}")
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "WANDB_MODE": "offline"})
    assert done.returncode == 2 and "trainer.max_epochs='abc' (a string)" in done.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "torch" not in imported and "lightning" not in imported, sorted(imported)[:20]
    assert not (tmp_path / "run").exists()
