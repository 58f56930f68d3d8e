"""The suite as an installed package, not only a clone: a wheel built from the checkout, installed into a fresh
virtual environment, runs from a folder outside the clone: every command's ``--help`` and ``--version``, the
quickstart (shortened), ``denoise-data list``, and a user's own ``conf/`` beside it."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import tomllib

from tests.helpers import ROOT

SCRIPTS = sorted(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])


def test_the_package_list_holds_every_package_and_config_group() -> None:
    """pyproject lists the packages (conf/ mapped to denoise.conf): a new folder must be added there."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    code = {".".join(p.relative_to(ROOT).parts[:-1]) for p in (ROOT / "denoise").rglob("__init__.py")}
    conf = {"denoise.conf" + "".join(f".{part}" for part in p.relative_to(ROOT / "conf").parts)
            for p in [ROOT / "conf", *(ROOT / "conf").rglob("*")] if p.is_dir()}  # fmt: skip
    assert sorted(setuptools["packages"]) == sorted(code | conf)
    assert setuptools["package-dir"] == {"denoise.conf": "conf"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel of this checkout (its dependencies: this environment's, through a .pth)."""
    work = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                            str(work / "dist"), str(ROOT)], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = (work / "dist").glob("denoise-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    # the dependencies of this environment, without its editable install of the checkout (a .pth's .pth files
    # are not read): `denoise` comes from the wheel alone
    Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert install.returncode == 0, install.stderr[-2000:]
    return venv


def run(venv: Path, *command: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "COLUMNS": "160"}
    env.pop("DENOISE_ROOT", None)
    env.pop("DENOISE_DATA", None)
    return subprocess.run(list(command), cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_the_wheel_runs_every_command_outside_the_clone(installed: Path, tmp_path: Path) -> None:
    probe = "import denoise, denoise.config.paths as c; print(denoise.__file__, c.CONF_DIR)"
    where = run(installed, "python", "-c", probe, cwd=tmp_path)
    module, conf = where.stdout.split()
    assert module.startswith(str(installed)) and conf.startswith(str(installed)) and conf.endswith("denoise/conf")
    for script in SCRIPTS:
        helped = run(installed, script, "--help", cwd=tmp_path)
        assert helped.returncode == 0, f"{script}: {helped.stderr[-1500:]}"
        assert run(installed, script, "--version", cwd=tmp_path).stdout.startswith("denoise ")
    listed = run(installed, "denoise-data", "list", cwd=tmp_path)
    assert listed.returncode == 0 and "set12" in listed.stdout


def test_the_wheel_trains_the_quickstart_and_reads_a_users_own_configs(installed: Path, tmp_path: Path) -> None:
    own = tmp_path / "conf" / "experiment"
    own.mkdir(parents=True)
    (own / "mine.yaml").write_text("# @package _global_\ntags: [mine]\nnoise:\n  sigma: 15\n")
    short = ["trainer.max_epochs=1", "data.samples_per_epoch=80", "logger=csv",
             "trainer.num_sanity_val_steps=0"]  # fmt: skip
    done = run(installed, "denoise-train", "experiment=mine", *short, "hydra.run.dir=run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "run" / "results.json").is_file() and (tmp_path / "run" / "checkpoints" / "best.ckpt").is_file()
    config = (tmp_path / "run" / ".hydra" / "config.yaml").read_text()
    assert "- mine" in config and "sigma: 15" in config  # the user's experiment, from the folder it ran in
