"""Hostile inputs, principle 4: a refused run writes nothing. A run refused for a finished run's folder, a live
run's lock, missing data or a wrong config value leaves every file where it points exactly as it was (the report:
the refused run rewrote the finished run's .hydra/ and appended to its train.log, and put its own seed into a
live run's overrides.yaml), says why in one line, and exits 2."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import TINY, run_cli

pytestmark = pytest.mark.slow
BASE = [*TINY, "logger=none"]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder``: its sha256 (a folder: '/')."""
    return {
        str(p.relative_to(folder)): "/" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
    }


def one_line_refusal(result: subprocess.CompletedProcess, says: str) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and says in result.stderr[result.stderr.index("error:") :], result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "the traceback is in" not in result.stderr


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("finished") / "run"
    result = run_cli("train.py", *BASE, run_dir=run)
    assert result.returncode == 0, result.stderr[-2000:]
    assert {".hydra/config.yaml", ".hydra/overrides.yaml", "train.log", "results.json"} <= set(snapshot(run))
    return run


def copy_of(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run"))


def test_a_finished_run_is_left_exactly_as_it_was(finished: Path, tmp_path: Path) -> None:
    run = copy_of(finished, tmp_path)
    before = snapshot(run)
    one_line_refusal(run_cli("train.py", *BASE, "seed=7", run_dir=run), "results.json already exists")
    one_line_refusal(run_cli("evaluate.py", "filters=[mean]", run_dir=run), "results.json already exists")
    assert snapshot(run) == before


def test_a_live_run_is_left_exactly_as_it_was(finished: Path, tmp_path: Path) -> None:
    """Into a live run's folder, and resuming its checkpoint from elsewhere: the lock refuses in one line (it was a
    raw RunDirectoryBusyError traceback), and the launch's own fresh folder is not made either."""
    run = copy_of(finished, tmp_path)
    (run / "results.json").unlink()  # still training
    hold = f"from denoise.training.runlock import RunLock\nlock = RunLock({str(run)!r})\nlock.acquire()\n"
    hold += "print('held', flush=True)\nimport time\ntime.sleep(120)"
    holder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        before = snapshot(run)
        busy = f"{run} is in use by a running training (pid {holder.pid}"
        one_line_refusal(run_cli("train.py", *BASE, "seed=7", run_dir=run), busy)
        launch = tmp_path / "launch"
        resume = f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}"
        one_line_refusal(run_cli("train.py", *BASE, resume, "trainer.max_epochs=2", run_dir=launch), busy)
        assert snapshot(run) == before and not launch.exists()
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (["data.test_dirs=[/no/such/folder]"], "data.test_dirs[0]: folder /no/such/folder does not exist"),
        (["trainer.max_epochs=abc"], "1 config value(s) of the wrong kind"),
        (["data=noisy_folder", "data.noisy_dir=/tmp", "data.min_noise_sigma=abc"], "1 config value(s) of the wrong"),
        (["data=sidd"], "train.py needs data.root: give data.root=..."),
    ],
)
def test_missing_data_or_a_wrong_value_makes_no_run_directory(tmp_path: Path, overrides: list[str], says: str) -> None:
    run = tmp_path / "logs" / "run"
    start = time.perf_counter()
    one_line_refusal(run_cli("train.py", *BASE, *overrides, run_dir=run), says)
    assert not run.exists() and time.perf_counter() - start < 120


def test_a_wrong_value_of_any_part_names_its_key(tmp_path: Path) -> None:
    """The report's case: data.min_noise_sigma=abc was a TypeError after the images were read. Every argument of
    every part the config builds is checked against the type its class declares."""
    from denoise.tasks.schema import check_types
    from tests.helpers import compose_cfg

    wrong = ["data.min_noise_sigma=abc", "data.val_fraction=[1]", "model.net.channels=two"]
    cfg = compose_cfg("train", [*BASE, "data=noisy_folder", "data.noisy_dir=/tmp", *wrong], tmp_path / "run")
    with pytest.raises(ValueError) as raised:
        check_types(cfg, "train.py")
    message = str(raised.value)
    assert "3 config value(s) of the wrong kind" in message
    assert "data.min_noise_sigma='abc' (a string): expected float (an argument of NoisyFolderDataModule)" in message
    assert "data.val_fraction=[1] (a list): expected float" in message
    assert "model.net.channels='two' (a string): expected int (an argument of REDNet)" in message
