"""denoise-data against a local HTTP server that serves fixtures: files checked by sha256 and resumed after an
interruption, truncated and wrong files refused, archives with members that would escape refused, and the
shipped catalog's checksums against the standard sets beside the checkout."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from denoise.cli.data import main as data_main
from denoise.data import catalog, fetch
from denoise.data.catalog import Entry
from denoise.data.fetch import FetchError, ManualDownloadError, get
from tests.fixtures.http_server import Server, sha, tar_bytes
from tests.helpers import SHARED_DATA


def files_entry(server: Server, files: dict[str, bytes], listed: dict[str, bytes] | None = None) -> Entry:
    """A ``files`` entry served from ``files``; the catalog lists ``listed`` (what the source should hold)."""
    for name, data in files.items():
        server.files[f"/sets/tiny/{name}"] = data
    listed = listed or files
    spec = {"base_url": f"{server.url}/sets/tiny/", "files": {n: [len(d), sha(d)] for n, d in listed.items()}}
    return Entry("tiny", "two files", "test terms", "https://example.org/tiny", "tiny/", "files", spec)


def test_files_land_checked_and_a_second_get_fetches_nothing(server: Server, tmp_path: Path) -> None:
    files = {"01.png": b"\x89PNG first image" * 100, "02.png": b"\x89PNG second" * 50}
    entry = files_entry(server, files)
    assert get(entry, tmp_path) == [f"tiny: 2 files in {tmp_path / 'tiny'} (2 fetched, sha256 checked)"]
    assert {p.name: p.read_bytes() for p in (tmp_path / "tiny").iterdir()} == files
    assert get(entry, tmp_path) == [f"tiny: 2 files in {tmp_path / 'tiny'} (0 fetched, sha256 checked)"]


def test_an_interrupted_download_resumes_where_it_stopped(server: Server, tmp_path: Path) -> None:
    data = bytes(range(256)) * 400
    entry = files_entry(server, {"big.png": data})
    server.cut.add("/sets/tiny/big.png")
    resume = r"ended after 51,200 of 102,400 bytes; the part is kept in .*: run the same command again to resume"
    with pytest.raises(FetchError, match=resume):
        get(entry, tmp_path)
    part = tmp_path / "tiny" / "big.png.download"
    assert part.stat().st_size == len(data) // 2 and not (tmp_path / "tiny" / "big.png").exists()
    get(entry, tmp_path)
    assert server.ranges == ["bytes=51200-"]  # only the rest was asked for
    assert (tmp_path / "tiny" / "big.png").read_bytes() == data and not part.exists()


def test_a_truncated_source_is_refused_and_nothing_kept(server: Server, tmp_path: Path) -> None:
    data = b"x" * 1000
    entry = files_entry(server, {"01.png": data[:600]}, listed={"01.png": data})
    with pytest.raises(FetchError, match="ended after 600 of 1,000 bytes"):
        get(entry, tmp_path)
    with pytest.raises(FetchError, match=r"holds only 600 bytes of the 1,000 expected .* refused, nothing kept"):
        get(entry, tmp_path)  # the resume finds nothing more: the source itself is short
    assert list((tmp_path / "tiny").iterdir()) == []


def test_a_wrong_checksum_is_refused_and_nothing_kept(server: Server, tmp_path: Path) -> None:
    entry = files_entry(server, {"01.png": b"evil" * 10}, listed={"01.png": b"good" * 10})
    with pytest.raises(FetchError, match=f"sha256 {sha(b'evil' * 10)}, not the catalog's {sha(b'good' * 10)}"):
        get(entry, tmp_path)
    assert not (tmp_path / "tiny").exists()  # not even the folder the fetch made


def archive_entry(server: Server, data: bytes, sha256: str | None) -> Entry:
    server.files["/BSR.tgz"] = data
    members = r"^BSR/images/(train|test)/[0-9]+\.jpg$"
    spec = {"archive": {"url": f"{server.url}/BSR.tgz", "sha256": sha256, "bytes": len(data), "members": members,
                        "exclude_stems_of": "held_out"}}  # fmt: skip
    return Entry("cbsd_tiny", "", "", "", "cbsd_tiny/", "archive", spec)


HELD_OUT = Entry("held_out", "", "", "", "held_out/", "files", {"base_url": "", "files": {"3.png": [1, "0" * 64]}})


def test_an_archive_unpacks_the_chosen_members_less_the_held_out_ones(server: Server, tmp_path: Path) -> None:
    data = tar_bytes({"BSR/images/train/1.jpg": b"one", "BSR/images/test/2.jpg": b"two",
                      "BSR/images/test/3.jpg": b"three", "BSR/README": b"text"})  # fmt: skip
    entry = archive_entry(server, data, sha(data))
    [line] = get(entry, tmp_path, entries={"held_out": HELD_OUT})
    assert line == f"cbsd_tiny: 2 files in {tmp_path / 'cbsd_tiny'} (archive sha256 {sha(data)})"
    assert sorted(p.name for p in (tmp_path / "cbsd_tiny").iterdir()) == ["1.jpg", "2.jpg"]  # 3 is CBSD68's
    assert not (tmp_path / ".downloads" / "BSR.tgz").exists()


@pytest.mark.parametrize("evil", ["../escaped.jpg", "BSR/images/train/../../../escaped.jpg", "/tmp/escaped.jpg"])
def test_an_archive_with_a_member_outside_is_refused_before_anything_is_written(
    server: Server, tmp_path: Path, evil: str
) -> None:
    data = tar_bytes({"BSR/images/train/1.jpg": b"one", evil: b"payload"})
    entry = archive_entry(server, data, sha(data))
    with pytest.raises(FetchError, match="would land outside the data folder; the archive is refused"):
        get(entry, tmp_path / "data", entries={"held_out": HELD_OUT})
    assert not (tmp_path / "data" / "cbsd_tiny").exists() and not (tmp_path / "escaped.jpg").exists()


def test_an_archive_with_a_link_among_its_members_is_refused(server: Server, tmp_path: Path) -> None:
    data = tar_bytes({"BSR/images/train/1.jpg": b"one"}, links={"BSR/images/train/2.jpg": "/etc/passwd"})
    with pytest.raises(FetchError, match="is a link or a special file; the archive is refused"):
        get(archive_entry(server, data, sha(data)), tmp_path, entries={"held_out": HELD_OUT})


def test_an_entry_without_a_pinned_checksum_needs_unverified(server: Server, tmp_path: Path) -> None:
    data = tar_bytes({"BSR/images/train/1.jpg": b"one"})
    entry = archive_entry(server, data, None)
    with pytest.raises(FetchError, match=r"published without a checksum .* --unverified"):
        get(entry, tmp_path, entries={"held_out": HELD_OUT})
    [line] = get(entry, tmp_path, unverified=True, entries={"held_out": HELD_OUT})
    assert f"archive sha256 {sha(data)}, unverified" in line


def test_a_manual_entry_says_where_to_download_and_where_to_put_it(tmp_path: Path) -> None:
    entry = catalog.catalog()["sidd_medium"]
    with pytest.raises(ManualDownloadError) as caught:
        get(entry, tmp_path)
    message = str(caught.value)
    assert "not fetched automatically" in message and "https://www.eecs.yorku.ca/~kamel/sidd/dataset.php" in message
    assert f"{tmp_path}/SIDD_Medium_Srgb/Data/<scene>/" in message and "data.root=" in message


def test_the_command_fetches_from_a_catalog_of_its_own(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server.files["/t/a.png"] = b"a" * 64
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(yaml.safe_dump({"entries": {"tiny": {
        "what": "one file", "terms": "none", "page": "https://example.org", "target": "tiny/",
        "base_url": f"{server.url}/t/", "files": {"a.png": [64, sha(b"a" * 64)]}}}}))  # fmt: skip
    monkeypatch.setenv("DENOISE_DATA_CATALOG", str(catalog))
    monkeypatch.setenv("DENOISE_DATA", str(tmp_path / "data"))
    assert data_main(["get", "tiny"]) == 0
    assert (tmp_path / "data" / "tiny" / "a.png").read_bytes() == b"a" * 64
    assert data_main(["list"]) == 0
    assert "yes" in capsys.readouterr().out
    assert data_main(["get", "nope"]) == 2
    assert "unknown ['nope']; expected some of ['tiny']" in capsys.readouterr().err


@pytest.mark.skipif(not (SHARED_DATA / "set12").is_dir(), reason="the standard sets are not beside this checkout")
def test_the_shipped_catalog_pins_the_standard_sets_file_by_file() -> None:
    """Every file of the shipped test sets and Train400 entries, against the copies beside the checkout."""
    entries = catalog.catalog()
    for name in ("set12", "bsd68", "cbsd68", "kodak24", "mcmaster", "train400"):
        entry = entries[name]
        local = sorted(p.name for p in (SHARED_DATA / name).iterdir())
        assert sorted(entry.spec["files"]) == local, name
        for file, (size, digest) in entry.spec["files"].items():
            path = SHARED_DATA / name / file
            assert path.stat().st_size == size and fetch.sha256_of(path) == digest, path
    for entry in entries.values():
        assert entry.what and entry.terms and entry.page.startswith("http"), entry.name


def test_an_interrupted_download_of_unknown_size_is_not_taken_for_whole(server: Server, tmp_path: Path) -> None:
    """A weights file published without size or checksum: the server's Content-Length tells a cut transfer."""
    server.files["/w/model.pth"] = data = b"w" * 4000
    entry = Entry("weights", "", "", "", "weights/", "file", {"file": {"url": f"{server.url}/w/model.pth",
                                                                        "sha256": None, "bytes": None}})  # fmt: skip
    server.cut.add("/w/model.pth")
    with pytest.raises(FetchError, match="ended after 2,000 of 4,000 bytes"):
        get(entry, tmp_path, unverified=True)
    assert not (tmp_path / "weights" / "model.pth").exists()
    [line] = get(entry, tmp_path, unverified=True)
    assert (tmp_path / "weights" / "model.pth").read_bytes() == data and f"sha256 {sha(data)}, unverified" in line


def test_an_unreachable_source_says_so_and_leaves_nothing(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    entry = Entry("tiny", "", "", "", "tiny/", "files",
                  {"base_url": f"http://127.0.0.1:{port}/", "files": {"a.png": [4, sha(b"abcd")]}})  # fmt: skip
    with pytest.raises(FetchError, match=r"could not download \(URLError: .*\); check the network"):
        get(entry, tmp_path)
    assert not (tmp_path / "tiny").exists()  # no empty part left to "resume", no empty folder


def test_the_data_folder_is_named_before_or_after_the_verb(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`denoise-data get NAME --data-dir DIR`, as the missing-data messages print it, and `--data-dir DIR get`."""
    server.files["/t/a.png"] = b"a" * 8
    listing = tmp_path / "catalog.yaml"
    entry = {"what": "x", "terms": "x", "page": "https://x.org", "target": "tiny/", "base_url": f"{server.url}/t/",
             "files": {"a.png": [8, sha(b"a" * 8)]}}  # fmt: skip
    listing.write_text(yaml.safe_dump({"entries": {"tiny": entry}}))
    monkeypatch.setenv("DENOISE_DATA_CATALOG", str(listing))
    assert data_main(["get", "tiny", "--data-dir", str(tmp_path / "after")]) == 0
    assert data_main(["--data-dir", str(tmp_path / "before"), "get", "tiny"]) == 0
    assert (tmp_path / "after" / "tiny" / "a.png").is_file() and (tmp_path / "before" / "tiny" / "a.png").is_file()
