"""Hostile inputs, principle 1: no name read from a file or a config value lands outside the folder it was given
(a catalog's file names, a task name, a dataset's name in a patch store's path)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from denoise.cli.data import main as data_main
from denoise.data.cache import PatchStore
from denoise.data.catalog import CatalogError, Entry, catalog, escapes
from denoise.data.fetch import FetchError, get
from denoise.data.pairs import ImagePair
from tests.fixtures.http_server import Server, sha
from tests.fixtures.small import tiny_images
from tests.helpers import ROOT, TINY


@pytest.mark.parametrize(
    "evil",
    ["../../../escape.txt", "/ABSOLUTE/escape.txt", "sub/../../escape.txt", "..\\..\\escape.txt", "C:escape.txt"],
)
def test_a_catalog_file_name_outside_the_data_folder_is_refused_with_nothing_written(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], evil: str
) -> None:
    """The report's case: a user's catalog (DENOISE_DATA_CATALOG) whose files: entry names ../../../escape.txt or
    an absolute path was downloaded to that path with rc 0."""
    evil = evil.replace("/ABSOLUTE", str(tmp_path / "abs"))
    payload = b"payload" * 8
    server.files["/t/" + evil.lstrip("/")] = payload
    listing = tmp_path / "catalog.yaml"
    entry = {
        "what": "x",
        "terms": "x",
        "page": "https://x.org",
        "target": "tiny/",
        "base_url": f"{server.url}/t/",
        "files": {"ok.png": [4, sha(b"okok")], evil: [len(payload), sha(payload)]},
    }
    listing.write_text(yaml.safe_dump({"entries": {"tiny": entry}}))
    monkeypatch.setenv("DENOISE_DATA_CATALOG", str(listing))
    data = tmp_path / "deep" / "er" / "data"
    assert data_main(["get", "tiny", "--data-dir", str(data)]) == 2
    err = capsys.readouterr().err
    assert f"entry 'tiny' names the file {evil!r}, which would land outside its folder tiny/" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p != listing]
    assert written == [], written


def test_a_file_name_is_checked_where_it_is_written_too(server: Server, tmp_path: Path) -> None:
    """An entry built elsewhere than catalog() (a script of the user's) meets the same check in get()."""
    spec = {"base_url": f"{server.url}/t/", "files": {"../escape.txt": [4, sha(b"evil")]}}
    server.files["/escape.txt"] = b"evil"
    with pytest.raises(FetchError, match=r"the file '../escape.txt' would land outside .*; refused"):
        get(Entry("tiny", "", "", "", "tiny/", "files", spec), tmp_path / "data")
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "data").exists()


def test_names_that_escape_are_told_from_names_that_do_not() -> None:
    for name in ("01.png", "sub/01.png", "a..b.png", "BSR/images/train/1.jpg"):
        assert not escapes(name), name
    for name in ("", "/etc/passwd", "../x", "a/../../x", "a\\b", "C:x", "x\x00.png"):
        assert escapes(name), name


def test_the_shipped_catalog_passes_its_own_check() -> None:
    entries = catalog()
    assert entries and all(not escapes(name) for e in entries.values() for name in e.spec.get("files", {}))


def test_a_target_outside_the_data_folder_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    listing = tmp_path / "catalog.yaml"
    listing.write_text(yaml.safe_dump({"entries": {"tiny": {"target": "../up/", "files": {}}}}))
    monkeypatch.setenv("DENOISE_DATA_CATALOG", str(listing))
    with pytest.raises(CatalogError, match=r"has target '../up/': expected a folder inside the data folder"):
        catalog()


def test_a_dataset_name_cannot_put_a_patch_store_outside_its_cache(tmp_path: Path) -> None:
    images = tiny_images(tmp_path / "img", count=1, size=(64, 64))
    pair = ImagePair(images / "img0.png", (images / "img0.png",), "p", "escaped", "p")
    with pytest.raises(ValueError, match=r"data.datasets: the name '../../escaped' names a patch store folder"):
        PatchStore.build([pair], tmp_path / "cache" / "patches", "../../escaped", size=32, stride=32, progress=False)
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("name", ["../../../x", "/tmp/abs", "a/b", "", ".hidden"])
def test_a_task_name_is_one_plain_folder_name(name: str) -> None:
    from denoise.tasks.rundir import check_task_name

    with pytest.raises(ValueError, match=r"expected a plain name \(letters, digits, '.', '_', '-'; no '/' or '..'\)"):
        check_task_name(name)
    check_task_name("train-sidd_v2.1")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["../../../x"])
def test_a_task_name_that_is_a_path_is_refused_before_anything_is_written(tmp_path: Path, name: str) -> None:
    """The report's case: task_name=../../../x put the run three levels above logs/ and its log file outside even
    the run; now one line, exit status 2, and no folder made anywhere."""
    work = tmp_path / "a" / "b" / "c"
    work.mkdir(parents=True)
    env = {**os.environ, "WANDB_MODE": "offline"}
    before = sorted(tmp_path.rglob("*"))
    command = [sys.executable, str(ROOT / "train.py"), *TINY, "logger=none", f"task_name={name}"]
    command.append(f"paths.log_dir={work / 'logs'}")
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert f"error: task_name={name!r}: expected a plain name" in done.stderr and "Traceback" not in done.stderr
    assert sorted(tmp_path.rglob("*")) == before and not Path("/tmp/abs").exists()
