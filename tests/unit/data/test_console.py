"""Progress without a terminal: plain lines (what, how far, how fast, elapsed, ETA) every interval and at the end,
never a duplicate; a bar on a terminal; nothing when asked for none."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from denoise.cli.data import main as data_main
from denoise.data.cache import PatchStore
from denoise.data.console import Steps, progress_mode
from denoise.data.pairs import ImagePair
from tests.fixtures.http_server import Server, sha
from tests.fixtures.small import tiny_images

#: what, how far (and what now), how fast, how long so far, how long still
LINE = (
    r"(?P<what>.+): (?P<far>[\d,./ ]+(?: [A-Za-z.]+)?)(?: \((?P<note>.*)\))?, [\d.]+ [A-Za-z./]+, "
    r"elapsed \d:\d\d:\d\d, ETA (\d:\d\d:\d\d|\?)"
)


def test_without_a_terminal_every_step_past_the_interval_is_a_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DENOISE_PROGRESS", "lines")
    said: list[str] = []
    with Steps("evaluate", 4, "runs", every=0, emit=said.append) as steps:
        for index in range(4):
            steps.advance(1, f"BM3D on {index}.png")
    assert len(said) == 4, said  # the end is not said twice
    assert all(re.fullmatch(LINE, line) for line in said), said
    assert said[0].startswith("evaluate: 1/4 runs (BM3D on 0.png), ") and said[-1].endswith("ETA 0:00:00")


def test_a_long_interval_says_only_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DENOISE_PROGRESS", "lines")
    said: list[str] = []
    with Steps("download", 3 << 20, "bytes", every=3600, emit=said.append) as steps:
        for _ in range(3):
            steps.advance(1 << 20)
    assert len(said) == 1 and said[0].startswith("download: 3.0 MB/3.0 MB, ") and " MB/s, " in said[0]


def test_the_mode_follows_the_variable_and_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DENOISE_PROGRESS", raising=False)
    assert progress_mode() == "lines"  # pytest's captured stdout is no terminal
    monkeypatch.setenv("DENOISE_PROGRESS", "none")
    said: list[str] = []
    with Steps("x", 2, every=0, emit=said.append) as steps:
        steps.advance(2)
    assert said == []
    monkeypatch.setenv("DENOISE_PROGRESS", "sometimes")
    with pytest.raises(ValueError, match=r"DENOISE_PROGRESS='sometimes': expected one of auto, bar, lines, none"):
        progress_mode()
    monkeypatch.setenv("DENOISE_PROGRESS", "lines")
    monkeypatch.setenv("DENOISE_PROGRESS_EVERY", "-1")
    with pytest.raises(ValueError, match=r"DENOISE_PROGRESS_EVERY='-1': expected a number of seconds >= 0"):
        Steps("x")


def test_the_patch_store_build_reports_in_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DENOISE_PROGRESS_EVERY", "0")
    images = sorted(tiny_images(tmp_path / "img", count=2, size=(64, 64)).iterdir())
    pairs = [ImagePair(path, (path,), path.stem, "tiny", path.stem) for path in images]
    with caplog.at_level(logging.INFO):
        PatchStore.build(pairs, tmp_path / "cache", "tiny", size=32, stride=32)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("patch store tiny: ")]
    assert [line.split(",")[0] for line in lines] == [
        "patch store tiny: 1/2 pairs (img0)",
        "patch store tiny: 2/2 pairs (img1)",
    ]


def test_denoise_data_reports_in_lines(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    server.files["/t/a.png"] = data = b"a" * 5000
    listing = tmp_path / "catalog.yaml"
    entry = {"what": "x", "terms": "x", "page": "https://x.org", "target": "tiny/", "base_url": f"{server.url}/t/",
             "files": {"a.png": [len(data), sha(data)]}}  # fmt: skip
    listing.write_text(yaml.safe_dump({"entries": {"tiny": entry}}))
    monkeypatch.setenv("DENOISE_DATA_CATALOG", str(listing))
    assert data_main(["get", "tiny", "--data-dir", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^denoise-data get tiny: 0\.0 MB/0\.0 MB, [\d.]+ MB/s, elapsed 0:00:00, ETA", out, re.M), out
    assert "\x1b[" not in out  # no terminal codes in a pipe
