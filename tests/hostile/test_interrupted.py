"""Hostile inputs, principle 5: interrupted work is cleaned up and resumable. A stop signal during the patch
store's build exits 75 with nothing half-made left; what killed processes left (half-built stores, the temporary
files of cut-off saves) is removed by the next run, never another live process's; a resume on training files that
changed since its checkpoint says so, and continues only with data.allow_changed=true."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from omegaconf import DictConfig

from denoise.data import cache
from denoise.data.cache import PatchStore
from denoise.data.files import owner_tag, partial_path, remove_stale_partials
from denoise.data.interrupt import StopSignalError, interruptible
from denoise.data.pairs import ImagePair
from denoise.tasks import train
from tests.fixtures.small import tiny_images
from tests.helpers import ROOT, TINY_REAL, with_values


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process of this host that has ended."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


@pytest.fixture
def live_pid() -> Iterator[int]:
    """The pid of another process of this host that is still running."""
    sleeper = subprocess.Popen(["sleep", "60"])
    yield sleeper.pid
    sleeper.kill()
    sleeper.wait()


def host() -> str:
    return owner_tag().rpartition(".")[0]


def pairs_of(folder: Path) -> list[ImagePair]:
    images = sorted(tiny_images(folder, count=2, size=(64, 64)).iterdir())
    return [ImagePair(path, (path,), path.stem, "tiny", path.stem) for path in images]


def test_a_stop_signal_becomes_an_exception_and_the_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    raised = pytest.raises(StopSignalError, match="SIGUSR1 received during the test's work")
    with raised, interruptible("the test's work"):
        os.kill(os.getpid(), signal.SIGUSR1)
        signal.sigtimedwait([], 0.1)  # the handler runs at the next bytecode
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_signal_during_the_store_build_leaves_no_half_made_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report: SIGTERM during the build exited 143 with no message and left <name>-<key>.tmp-<pid> (153 MB)."""
    real = cache.write_patches

    def killed_half_way(folder: Path, *args: object, **kwargs: object) -> object:
        assert folder.name.endswith(f".tmp-{owner_tag()}") and folder.is_dir()
        os.kill(os.getpid(), signal.SIGTERM)
        signal.sigtimedwait([], 0.1)
        return real(folder, *args, **kwargs)

    monkeypatch.setattr(cache, "write_patches", killed_half_way)
    with pytest.raises(StopSignalError, match="SIGTERM received during the build of the patch store"):
        PatchStore.build(pairs_of(tmp_path / "img"), tmp_path / "cache", "tiny", size=32, stride=32, progress=False)
    assert list((tmp_path / "cache").iterdir()) == []
    monkeypatch.setattr(cache, "write_patches", real)
    assert PatchStore.build(pairs_of(tmp_path / "img"), tmp_path / "cache", "tiny", size=32, stride=32).count == 8


def test_half_built_stores_of_dead_processes_are_removed_and_no_others(
    tmp_path: Path, dead_pid: int, live_pid: int, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "cache"
    dead, live = folder / f"tiny-0.tmp-{host()}.{dead_pid}", folder / f"tiny-0.tmp-{host()}.{live_pid}"
    elsewhere = folder / f"tiny-0.tmp-another-node.{dead_pid}"
    earlier = folder / f"tiny-0.tmp-{dead_pid}"  # an earlier version's name, without the host
    for path in (dead, live, elsewhere, earlier):
        path.mkdir(parents=True)
        (path / "noisy.npy").write_bytes(b"x" * 1000)
    PatchStore.build(pairs_of(tmp_path / "img"), folder, "tiny", size=32, stride=32, progress=False)
    assert not dead.exists() and live.is_dir() and elsewhere.is_dir() and earlier.is_dir()
    assert f"{earlier} is a half-built patch store of an earlier version (pid {dead_pid}" in caplog.text


def test_temporary_files_of_dead_processes_are_removed_and_no_others(
    tmp_path: Path, dead_pid: int, live_pid: int
) -> None:
    mine = partial_path(tmp_path / "last.ckpt")
    dead, live = (mine.name.replace(f".{os.getpid()}.", f".{pid}.") for pid in (dead_pid, live_pid))
    other_host = mine.name.replace(f".{host()}.", ".another-node.").replace(f".{os.getpid()}.", f".{dead_pid}.")
    unknown = ".last.ckpt.1a2b3c4d.partial"  # an earlier version's name: whose it is cannot be told
    for name in (mine.name, dead, live, other_host, unknown):
        (tmp_path / name).write_bytes(b"half")
    assert remove_stale_partials(tmp_path) == [tmp_path / dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, live, other_host, unknown])


@pytest.mark.slow
def test_a_killed_store_build_exits_75_and_the_same_command_builds_it(tmp_path: Path) -> None:
    """Through the command: the signal arrives in prepare_data (before Lightning's own handlers exist)."""
    from tests.fixtures.real import make_sidd

    root = make_sidd(tmp_path / "data")
    script = (
        "import os, signal, sys\nfrom denoise.data import cache\nreal = cache.write_patches\n"
        "def killed(*a, **k):\n    os.kill(os.getpid(), signal.SIGTERM)\n    signal.sigtimedwait([], 0.5)\n"
        "    return real(*a, **k)\ncache.write_patches = killed\nfrom denoise.cli.train import main\nmain()\n"
    )
    overrides = ["data=sidd", f"data.root={root}", *TINY_REAL, f"paths.cache_dir={tmp_path / 'cache'}"]
    overrides.append(f"hydra.run.dir={tmp_path / 'run'}")
    options = {"cwd": ROOT, "env": {**os.environ, "WANDB_MODE": "offline"}, "capture_output": True, "text": True}
    killed = subprocess.run([sys.executable, "-c", script, *overrides], timeout=600, **options)
    assert killed.returncode == 75, killed.stderr[-3000:]
    assert "Pre-empted: SIGTERM received during the build of the patch store" in killed.stdout + killed.stderr
    assert not [p for p in (tmp_path / "cache" / "patches").iterdir() if ".tmp-" in p.name]
    again = subprocess.run([sys.executable, str(ROOT / "train.py"), *overrides], timeout=600, **options)
    assert again.returncode == 0, again.stderr[-3000:]


@pytest.mark.slow
def test_a_resume_of_a_killed_save_removes_what_the_save_left(
    cfg_train: DictConfig, tmp_path: Path, dead_pid: int, live_pid: int
) -> None:
    """The report: .partial files of a killed checkpoint save survived a successful resume."""
    train(cfg_train)
    checkpoints = tmp_path / "run" / "checkpoints"
    tag = owner_tag().rpartition(".")[0]
    dead = checkpoints / f".last.ckpt.{tag}.{dead_pid}.0badc0de.partial"
    live = checkpoints / f".last.ckpt.{tag}.{live_pid}.0badc0de.partial"
    dead.write_bytes(b"half a checkpoint")
    live.write_bytes(b"another process's save")
    train(with_values(cfg_train, f"ckpt_path={checkpoints / 'last.ckpt'}", "trainer.max_epochs=2", "overwrite=true"))
    assert not dead.exists() and live.exists()


def synthetic_run(cfg: DictConfig, images: Path, *assignments: str) -> DictConfig:
    return with_values(cfg, f"data.train_dirs=[{images}]", "data.patch_size=32", *assignments)


@pytest.mark.slow
def test_a_resume_on_changed_training_files_is_refused_unless_allowed(cfg_train: DictConfig, tmp_path: Path) -> None:
    """The report: a resume after one training image was swapped finished with no word of it."""
    import copy

    images = tiny_images(tmp_path / "train", count=3, size=(48, 48))
    train(synthetic_run(copy.deepcopy(cfg_train), images))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    resume = ("ckpt_path=" + str(last), "trainer.max_epochs=2", "overwrite=true")
    (images / "img1.png").write_bytes((images / "img2.png").read_bytes())  # one image swapped for another
    (images / "img9.png").write_bytes((images / "img0.png").read_bytes())  # and one added
    with pytest.raises(ValueError) as refused:
        train(synthetic_run(copy.deepcopy(cfg_train), images, *resume))
    message = str(refused.value)
    assert f"ckpt_path={last} was trained on other training files than the data gives now" in message
    assert "1 changed (img1.png); 1 added (img9.png) (3 files of" in message and "then, 4 of" in message
    assert "pass data.allow_changed=true to continue on these files" in message
    train(synthetic_run(copy.deepcopy(cfg_train), images, *resume, "data.allow_changed=true"))


def test_the_fingerprint_follows_the_files_not_where_they_are(tmp_path: Path) -> None:
    from denoise.data.files import files_fingerprint, fingerprint_changes

    first = files_fingerprint(sorted(tiny_images(tmp_path / "a" / "set", count=3).iterdir()))
    moved = tmp_path / "b" / "elsewhere"
    moved.parent.mkdir()
    (tmp_path / "a" / "set").rename(moved)
    assert fingerprint_changes(first, files_fingerprint(sorted(moved.iterdir()))) == ""
    (moved / "img0.png").write_bytes((moved / "img0.png").read_bytes() + b"\0")  # one byte more
    assert fingerprint_changes(first, files_fingerprint(sorted(moved.iterdir()))).startswith("1 changed (img0.png)")
