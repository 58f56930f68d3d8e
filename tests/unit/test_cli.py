"""The commands: every console script is installed, and an override that needs a missing optional part stops at
once with the pip install that adds it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from denoise import cli
from denoise.config import resolvers
from tests.helpers import ROOT

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

SCRIPTS = ("denoise-train", "denoise-evaluate", "denoise-eda", "denoise-prepare", "denoise-models", "denoise-predict",
           "denoise-export", "denoise-zoo", "denoise-data")  # fmt: skip


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


@pytest.mark.slow  # a process per command
@pytest.mark.parametrize("script", SCRIPTS)
def test_every_help_answers_without_loading_pytorch(script: str) -> None:
    """``--help`` imports no torch, lightning or cv2 (the heavy parts load when a command runs):
    bench/cli_startup.py times it."""
    module = f"denoise.cli.{script.removeprefix('denoise-')}"
    loaded = "print(sorted(m for m in ('torch', 'lightning', 'cv2') if m in sys.modules))"
    probe = f"import sys; sys.argv = ['{script}', '--help']\nfrom {module} import main\ntry:\n    main()\n"
    probe += f"except SystemExit:\n    pass\n{loaded}"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage" in done.stdout.lower() or "== Config ==" in done.stdout or "Powered by Hydra" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_predicts_precisions_are_the_evaluation_precisions() -> None:
    from denoise.cli.predict import EVAL_PRECISIONS as LISTED
    from denoise.inference.precision import EVAL_PRECISIONS

    assert LISTED == EVAL_PRECISIONS


@pytest.mark.slow  # a process composing every model config
def test_the_model_table_counts_every_config_without_running_it() -> None:
    """denoise-models: parameters and GMACs of every conf/model on the meta device (the papers' counts), CPU time
    only with --time."""
    done = subprocess.run([sys.executable, "-m", "denoise.cli.models", "--json"], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {row["model"]: row for row in json.loads(done.stdout)["models"]}
    assert set(rows) == {p.stem for p in (ROOT / "conf" / "model").glob("*.yaml")}
    assert rows["nafnet"]["parameters"] == 29_159_715 and rows["drunet"]["parameters"] == 32_640_960
    assert rows["restormer"]["parameters"] == 26_111_668 and rows["ffdnet"]["parameters"] == 852_108
    assert rows["nafnet"]["gmacs_per_megapixel"] == pytest.approx(244.8, abs=0.1)  # 16.0 G at 256x256 (paper: 16)
    assert all("cpu_ms" not in row for row in rows.values())


@pytest.mark.slow  # a process per command
@pytest.mark.parametrize("script", SCRIPTS)
def test_every_command_says_its_version(script: str) -> None:
    import denoise

    done = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-1000:]
    assert done.stdout.startswith(f"denoise {denoise.__version__}")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert not head or f"(git {head[:12]}" in done.stdout
