"""Hostile inputs, principle 2: every reader is bounded. Archives are streamed and counted (an archive bomb is
refused with nothing kept, without reading it whole), and a network spec is sized before anything is allocated,
for every registered network (an 8 KB checkpoint cannot ask for five million modules)."""

from __future__ import annotations

import hashlib
import time
import tracemalloc
from pathlib import Path

import pytest
import torch

from denoise.checkpoint import CheckpointError, load_network
from denoise.cli import predict
from denoise.config import budget
from denoise.config.specs import REGISTRY, build
from denoise.data import archive
from denoise.data.archive import ArchiveError
from denoise.data.catalog import Entry
from denoise.data.fetch import get
from tests.fixtures.http_server import Server, tar_bytes, zip_bytes
from tests.fixtures.small import lightning_checkpoint, tiny_images

BOMB = 50 << 20  # a 50 MB member of zeros: ~50 KB compressed, 1000 times its archive


def archive_entry(server: Server, data: bytes, name: str = "set.zip", unpacked: int | None = None) -> Entry:
    server.files[f"/{name}"] = data
    spec = {"url": f"{server.url}/{name}", "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    spec |= {"members": r"^img/.*\.png$", **({"unpacked_bytes": unpacked} if unpacked else {})}
    return Entry("tiny", "", "", "", "tiny/", "archive", {"archive": spec})


def peak_traced(call) -> tuple[int, BaseException | None]:
    """The most Python memory ``call`` held at once, and what it raised."""
    tracemalloc.start()
    raised = None
    try:
        call()
    except Exception as err:  # the test inspects it
        raised = err
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, raised


@pytest.mark.parametrize("kind", ["zip", "tgz"])
def test_an_archive_bomb_is_refused_streamed_with_nothing_kept(server: Server, tmp_path: Path, kind: str) -> None:
    """The report's case: a small zip with one huge member was read whole into memory (4.24 GB peak) and a tar.gz
    wrote its 2 GB member with rc 0. Now the declared sizes are added up before anything is written."""
    data = (zip_bytes if kind == "zip" else tar_bytes)({"img/1.png": b"\x89PNG small", "img/2.png": bytes(BOMB)})
    assert len(data) < BOMB / 500
    entry = archive_entry(server, data, f"set.{kind}")
    start = time.perf_counter()
    peak, raised = peak_traced(lambda: get(entry, tmp_path / "data"))
    assert isinstance(raised, ArchiveError), raised
    assert f"would unpack to more than {100 * len(data):,} bytes" in str(raised)
    assert "refused as an archive bomb, nothing kept. DENOISE_MAX_UNPACKED_GB=<gigabytes> raises the limit" in str(
        raised
    )
    assert peak < 8 << 20 and time.perf_counter() - start < 10
    assert [p for p in (tmp_path / "data").rglob("*") if p.is_file()] == []  # not even the archive


def test_the_limit_is_raised_by_its_variable(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = zip_bytes({"img/1.png": bytes(BOMB)})
    monkeypatch.setenv("DENOISE_MAX_UNPACKED_GB", "1")
    [line] = get(archive_entry(server, data), tmp_path)
    assert "1 files in" in line and (tmp_path / "tiny" / "1.png").stat().st_size == BOMB
    monkeypatch.setenv("DENOISE_MAX_UNPACKED_GB", "-3")
    with pytest.raises(ArchiveError, match=r"DENOISE_MAX_UNPACKED_GB='-3': expected a positive number of gigabytes"):
        get(archive_entry(server, data), tmp_path)


def test_a_catalog_may_state_what_an_archive_unpacks_to(server: Server, tmp_path: Path) -> None:
    data = zip_bytes({"img/1.png": bytes(4000), "img/2.png": bytes(4000)})
    with pytest.raises(ArchiveError, match=r"more than 5,000 bytes"):
        get(archive_entry(server, data, unpacked=5000), tmp_path)
    assert get(archive_entry(server, data, unpacked=8000), tmp_path)


def test_a_zip_that_holds_more_than_it_declares_is_refused_as_corrupt(tmp_path: Path) -> None:
    """Declared sizes can lie: a member whose headers say 100 bytes but whose data inflates to 1 MB."""
    data = bytearray(zip_bytes({"img/1.png": bytes(1 << 20)}))
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local header, central directory
        at = data.find(signature)
        data[at + offset : at + offset + 4] = (100).to_bytes(4, "little")
    path = tmp_path / "liar.zip"
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match=r"liar.zip is corrupt \(BadZipFile"):
        archive.unpack(path, tmp_path / "out", r"^img/")
    assert list((tmp_path / "out").iterdir()) == []


def test_an_archive_of_too_many_members_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive, "MAX_MEMBERS", 50)
    path = tmp_path / "many.tgz"
    path.write_bytes(tar_bytes({f"img/{i}.png": b"x" for i in range(51)}))
    refused = r"many.tgz has more than 50 members; refused, nothing kept \(DENOISE_MAX_MEMBERS raises the limit\)"
    with pytest.raises(ArchiveError, match=refused):
        archive.unpack(path, tmp_path / "out", r"^img/")
    assert not (tmp_path / "out").exists()
    monkeypatch.setenv("DENOISE_MAX_MEMBERS", "51")
    assert len(archive.unpack(path, tmp_path / "out", r"^img/")) == 51


#: for every registered network, one argument that asks for an absurd network: the module budget, the parameter
#: budget, or a number no network needs (the three checks); a new network must add its case here
ABSURD = {
    "autoencoder.ConvAutoencoder": ({"channels": 30_000}, "parameters"),
    "bsn.APBSN": ({"num_modules": 60_000}, "modules"),
    "dncnn.DnCNN": ({"depth": 60_000}, "modules"),
    "drunet.DRUNet": ({"blocks": 60_000}, "modules"),
    "ffdnet.FFDNet": ({"layers": 5_000_000}, "argument"),
    "mwcnn.MWCNN": ({"widths": [60_000, 60_000, 60_000]}, "parameters"),
    "nafnet.NAFNet": ({"middle_blocks": 60_000}, "parameters"),
    "pridnet.PRIDNet": ({"width": 1000.0}, "parameters"),
    "rednet.REDNet": ({"channels": 60_000}, "parameters"),
    "restormer.Restormer": ({"blocks": [4, 6, 6, 60_000]}, "parameters"),
    "swinir.SwinIR": ({"depths": [10**9] * 6}, "argument"),
}
EXPECTED = {
    "modules": "asks for more than 10,000 modules: the limit on a network's size (DENOISE_MAX_MODULES raises it)",
    "parameters": "asks for more than 1,000,000,000 parameters: the limit on a network's size (DENOISE_MAX_PARAMETERS",
    "argument": "the most a network's argument may be (DENOISE_MAX_NETWORK_ARGUMENT raises it)",
}


def test_every_registered_network_has_an_absurd_case() -> None:
    assert {f"denoise.models.{name}" for name in ABSURD} == set(REGISTRY["network"])


@pytest.mark.parametrize("name", sorted(ABSURD))
def test_an_absurd_spec_of_every_network_is_refused_before_allocation(name: str) -> None:
    arguments, limit = ABSURD[name]
    start = time.perf_counter()
    with pytest.raises(budget.NetworkTooLargeError) as raised:  # on the meta device: no memory is allocated
        build({"_target_": f"denoise.models.{name}", **arguments}, what="model.net", kind="network")
    assert EXPECTED[limit] in str(raised.value)
    assert time.perf_counter() - start < 10


def test_the_limits_are_raised_by_their_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = {"_target_": "denoise.models.dncnn.DnCNN", "depth": 4_000, "channels": 4}
    with pytest.raises(budget.NetworkTooLargeError, match="10,000 modules"):
        build(spec, what="model.net", kind="network")
    monkeypatch.setenv("DENOISE_MAX_MODULES", "20000")
    net = build(spec, what="model.net", kind="network")
    assert len(list(net.modules())) == 3 * 4_000 - 2 + 1
    monkeypatch.setenv("DENOISE_MAX_MODULES", "many")
    with pytest.raises(budget.NetworkTooLargeError, match="DENOISE_MAX_MODULES='many': expected a positive number"):
        build(spec, what="model.net", kind="network")


def test_every_shipped_network_fits_the_budget_with_room() -> None:
    """The suite's own networks, as conf/model builds them, are far inside every limit."""
    from denoise.tasks.compose import model_specs

    for name, spec in model_specs().items():
        with torch.device("meta"):
            net = build(spec, what=name, kind="network")
        assert len(list(net.modules())) < budget.MAX_MODULES / 10, name
        assert sum(p.numel() for p in net.parameters()) < budget.MAX_PARAMETERS / 8, name


def test_an_8_kb_checkpoint_asking_for_millions_of_layers_is_refused_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The report's case: DnCNN with depth=5000000 made denoise-predict build modules for minutes."""
    spec = {"_target_": "denoise.models.dncnn.DnCNN", "depth": 3, "channels": 4}
    ckpt = lightning_checkpoint(tmp_path / "bomb.ckpt", spec)
    saved = torch.load(ckpt, weights_only=True)
    saved["hyper_parameters"]["net"]["depth"] = 5_000_000
    torch.save(saved, ckpt)
    assert ckpt.stat().st_size < 12_000
    images = tiny_images(tmp_path / "in", count=1)
    start = time.perf_counter()
    assert predict.main([str(ckpt), str(images), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "CKPT=" in err and "model.net.depth=5000000 is larger than 65,536" in err and "Traceback" not in err
    assert time.perf_counter() - start < 10 and not (tmp_path / "out").exists()
    with pytest.raises(CheckpointError, match="its network spec cannot be built"):
        load_network(ckpt)
