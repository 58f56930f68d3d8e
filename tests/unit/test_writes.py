"""Nothing is half-written and nothing a user had is replaced: every write lands whole or not at all (beside its
target, fsynced, renamed; checkpoints too, on any filesystem), outputs never replace inputs or existing files
without a flag, and a resumed run keeps its whole metrics history."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import pytest
import torch

from denoise.data.files import (
    OutputExistsError,
    UnwritableError,
    atomic_open,
    leftover_partials,
    writable_folder,
    write_bytes,
)
from tests.fixtures.small import lightning_checkpoint, tiny_images

NET = {"_target_": "denoise.models.rednet.REDNet", "depth": 10, "channels": 8, "in_channels": 3}


class DiskFullError(OSError):
    def __init__(self) -> None:
        super().__init__(errno.ENOSPC, "No space left on device")


def test_an_interrupted_write_leaves_the_old_file_whole(tmp_path: Path) -> None:
    target = write_bytes(tmp_path / "results.json", b'{"psnr": 30}\n')
    with pytest.raises(DiskFullError), atomic_open(target) as handle:
        handle.write(b'{"psnr": 3')
        raise DiskFullError()
    assert target.read_bytes() == b'{"psnr": 30}\n'
    assert leftover_partials(tmp_path) == []


def test_writes_never_clobber_without_overwrite(tmp_path: Path) -> None:
    target = write_bytes(tmp_path / "out.png", b"mine")
    with pytest.raises(OutputExistsError, match=r"out\.png already exists"):
        write_bytes(target, b"theirs", overwrite=False)
    assert target.read_bytes() == b"mine" and leftover_partials(tmp_path) == []
    assert write_bytes(tmp_path / "new.png", b"x", overwrite=False).read_bytes() == b"x"


def test_a_folder_that_cannot_be_written_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(UnwritableError, match=r"-o=.*file is a file; expected a folder"):
        writable_folder(tmp_path / "file", "-o")
    with pytest.raises(UnwritableError, match=r"-o=/proc/denoise/out cannot be written"):
        writable_folder("/proc/denoise/out", "-o")


def _checkpoint_io_save(path: Path, value: float) -> None:
    from denoise.checkpoint import AtomicCheckpointIO

    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.full((256, 256), value)}}, path)


def test_checkpoints_are_written_beside_their_target_never_through_tmpdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TMPDIR on another filesystem (/dev/shm, a tmpfs, as node-local temp is on clusters): Lightning's writer
    moved its temporary file across, i.e. truncated last.ckpt and copied into it. Ours renames a file written in
    the checkpoint's own folder: a reader holding the old last.ckpt still reads the old bytes, whole."""
    elsewhere = Path("/dev/shm") if Path("/dev/shm").is_dir() else tmp_path / "tmp"
    tmpdir = Path(tempfile.mkdtemp(dir=elsewhere))
    monkeypatch.setattr(tempfile, "tempdir", str(tmpdir))
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    last = tmp_path / "checkpoints" / "last.ckpt"
    _checkpoint_io_save(last, 1.0)
    replaced: list[tuple[str, str]] = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (replaced.append((str(a), str(b))), real_replace(a, b))[1])
    with last.open("rb") as old:
        _checkpoint_io_save(last, 2.0)
        assert torch.load(old, weights_only=True)["state_dict"]["w"][0, 0] == 1.0  # the old inode, untouched
    assert torch.load(last, weights_only=True)["state_dict"]["w"][0, 0] == 2.0
    assert [Path(a).parent for a, _ in replaced] == [last.parent]
    assert list(tmpdir.iterdir()) == []
    tmpdir.rmdir()


def test_a_full_disk_mid_checkpoint_keeps_the_previous_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    last = tmp_path / "last.ckpt"
    _checkpoint_io_save(last, 1.0)
    real_save = torch.save

    def fails_half_way(obj, handle, *args, **kwargs):  # a full disk after the first bytes
        handle.write(b"PK\x03\x04 half a zip")
        raise DiskFullError()

    monkeypatch.setattr(torch, "save", fails_half_way)
    with pytest.raises(OSError, match=r"cannot save the checkpoint .*last\.ckpt: the disk is full \(.* MiB free\)"):
        _checkpoint_io_save(last, 2.0)
    monkeypatch.setattr(torch, "save", real_save)
    assert torch.load(last, weights_only=True)["state_dict"]["w"][0, 0] == 1.0
    assert leftover_partials(tmp_path) == []


def test_export_never_writes_over_its_checkpoint_or_an_existing_file(tmp_path: Path, capsys) -> None:
    from denoise.cli import export

    ckpt = lightning_checkpoint(tmp_path / "m.ckpt", NET)
    before = ckpt.read_bytes()
    assert export.main([str(ckpt), "-o", str(ckpt)]) == 2
    assert export.main([str(ckpt), "-o", str(ckpt), "--overwrite"]) == 2
    assert "is the checkpoint being exported" in capsys.readouterr().err
    assert ckpt.read_bytes() == before
    existing = tmp_path / "old.onnx"
    existing.write_bytes(b"the user's")
    assert export.main([str(ckpt), "-o", str(existing)]) == 2
    assert "old.onnx already exists; pass --overwrite" in capsys.readouterr().err
    assert existing.read_bytes() == b"the user's"
    assert export.main([str(ckpt), "-o", str(tmp_path)]) == 2
    assert "is a folder; expected the .onnx file" in capsys.readouterr().err


def test_predict_never_replaces_files_without_overwrite(tmp_path: Path, capsys) -> None:
    from denoise.cli import predict

    ckpt = lightning_checkpoint(tmp_path / "m.ckpt", NET)
    images = tiny_images(tmp_path / "in", count=2)
    out = tmp_path / "out"
    out.mkdir()
    (out / "img1.png").write_bytes(b"the user's")
    assert predict.main([str(ckpt), str(images), "-o", str(out)]) == 2
    assert "1 output file(s) already exist: " in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["img1.png"] and (out / "img1.png").read_bytes() == b"the user's"
    assert predict.main([str(ckpt), str(images), "-o", str(out), "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["img0.png", "img1.png"]
    assert (out / "img1.png").read_bytes()[:4] == b"\x89PNG"
    assert predict.main([str(ckpt), str(images), "-o", str(out / "img0.png")]) == 2
    assert "-o=" in capsys.readouterr().err


def test_non_finite_outputs_are_an_error_naming_the_file(tmp_path: Path, capsys) -> None:
    """A NaN weight would write all-black images with exit 0."""
    from denoise.cli import predict

    ckpt = lightning_checkpoint(tmp_path / "m.ckpt", NET)
    state = torch.load(ckpt, weights_only=True)
    name = next(k for k in state["state_dict"] if k.endswith("weight"))
    state["state_dict"][name][0].fill_(float("nan"))
    torch.save(state, ckpt)
    images = tiny_images(tmp_path / "in", count=1)
    assert predict.main([str(ckpt), str(images), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "m.ckpt produced" in err and "non-finite value(s) (NaN or inf) on" in err and "img0.png" in err
    assert not list((tmp_path / "out").glob("*.png"))


def test_a_finished_run_directory_is_not_written_over(tmp_path: Path) -> None:
    from denoise.tasks import evaluate, train
    from tests.helpers import TINY, compose_cfg

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "results.json").write_text('{"test/psnr": 31.0}\n')
    # a finished run's last.ckpt: no requeued job to resume (that is for unfinished runs), a finished run to keep
    lightning_checkpoint(run / "checkpoints" / "last.ckpt", NET)
    for task, overrides in ((train, [*TINY, "logger=none"]), (evaluate, ["filters=[mean]"])):
        cfg = compose_cfg(task.__name__, overrides, run)
        with pytest.raises(OutputExistsError, match=r"results\.json already exists: .* Pass overwrite=true"):
            task(cfg)
    assert (run / "results.json").read_text() == '{"test/psnr": 31.0}\n'
    images = tiny_images(tmp_path / "images", count=1)
    evaluate(compose_cfg("evaluate", ["filters=[mean]", f"data.test_dirs=[{images}]", "overwrite=true"], run))
    assert "methods" in (run / "results.json").read_text()


def test_a_resumed_csv_log_keeps_its_history(tmp_path: Path) -> None:
    from denoise.training.loggers import ResumableCSVLogger

    first = ResumableCSVLogger(tmp_path, name="csv", version="")
    first.log_metrics({"train/loss": 1.0}, step=1)
    first.log_metrics({"val/psnr": 20.0}, step=2)
    first.save()
    resumed = ResumableCSVLogger(tmp_path, name="csv", version="")
    resumed.log_metrics({"train/loss": 0.5}, step=3)
    resumed.log_metrics({"test/psnr": 25.0}, step=4)  # a new column: the file is rewritten with it
    resumed.save()
    lines = (tmp_path / "csv" / "metrics.csv").read_text().splitlines()
    assert lines[0].split(",") == ["step", "test/psnr", "train/loss", "val/psnr"]
    assert [line.split(",")[0] for line in lines[1:]] == ["1", "2", "3", "4"]


@pytest.mark.slow
def test_an_unwritable_run_directory_is_one_line(tmp_path: Path) -> None:
    """Hydra's own mkdir would fail with a traceback; the run-directory check says it in one line, exit 2."""
    import subprocess
    import sys

    from tests.helpers import ROOT

    (tmp_path / "a_file").write_text("x")
    for run_dir in ("/proc/denoise/run", str(tmp_path / "a_file")):
        result = subprocess.run(
            [sys.executable, str(ROOT / "train.py"), f"hydra.run.dir={run_dir}", "logger=none"],
            capture_output=True, text=True, timeout=120, cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr[-2000:]
        assert result.stderr.strip().startswith(f"error: hydra.run.dir={run_dir} ")
        assert "Traceback" not in result.stderr
