"""The commands: every console script is installed, and an override that needs a missing optional part stops at
once with the pip install that adds it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from denoise import cli, resolvers
from tests.helpers import ROOT

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

SCRIPTS = ("denoise-train", "denoise-evaluate", "denoise-eda", "denoise-prepare", "denoise-models", "denoise-predict",
           "denoise-export", "denoise-zoo")  # fmt: skip


def test_every_command_is_a_console_script_of_the_cli_package() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert sorted(declared) == sorted(SCRIPTS)
    assert all(target.startswith("denoise.cli.") and target.endswith(":main") for target in declared.values())
    for name in SCRIPTS:
        assert (Path(sys.executable).parent / name).is_file(), f"pip install -e . installs {name} beside python"


@pytest.mark.parametrize(
    ("override", "extra"),
    [
        ("launcher=slurm", "slurm"),
        ("launcher=joblib", "parallel"),
        ("hparams_search=optuna", "search"),
        ("logger=tensorboard", "tensorboard"),
    ],
)
def test_a_missing_extra_is_named_with_its_pip_install(
    override: str, extra: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    cli.check_extras([override])  # installed here ([dev] pulls every extra): nothing to say
    monkeypatch.setattr(resolvers.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SystemExit) as stopped:
        cli.check_extras(["model=rednet", override])
    assert stopped.value.code == 2
    assert f"{override} needs" in capsys.readouterr().err
    with pytest.raises(ImportError, match=rf"pip install 'denoise\[{extra}\]'"):
        resolvers.require_extra(next(module for module, name in resolvers.EXTRAS.items() if name == extra))


def test_one_version_string() -> None:
    import importlib.metadata

    import denoise

    assert importlib.metadata.version("denoise") == denoise.__version__
    assert "version =" not in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
