"""The model zoo: ``zoo:<name>`` works wherever a checkpoint path does; a URL entry is downloaded once (from a
local HTTP server here) and refused when its sha256 differs; an untrained card says how to train it."""

from __future__ import annotations

import http.server
import shutil
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from denoise import zoo
from denoise.checkpoint import load_network
from denoise.tasks import evaluate
from tests.fixtures.small import lightning_checkpoint, tiny_images
from tests.helpers import compose_cfg

NET = {"_target_": "denoise.models.rednet.REDNet", "depth": 10, "channels": 8, "in_channels": 3}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1 serving ``tmp_path/www``; yields its base URL and the paths asked for."""
    root = tmp_path / "www"
    root.mkdir()
    asked: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args) -> None:
            asked.append(self.path)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", asked
    finally:
        httpd.shutdown()


@pytest.fixture
def my_zoo(tmp_path: Path, server: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch) -> dict:
    """A zoo index with a shipped file, a URL (right and wrong sha256) and an untrained card."""
    base, _ = server
    (tmp_path / "zoo").mkdir()
    weights = lightning_checkpoint(tmp_path / "zoo" / "red.ckpt", NET, identity=True)
    shutil.copy(weights, tmp_path / "www" / "red.ckpt")
    digest = zoo.sha256(weights)
    cards = {
        "shipped": {"network": "RED10-8", "file": "red.ckpt", "sha256": digest},
        "remote": {"network": "RED10-8", "url": f"{base}/red.ckpt", "sha256": digest},
        "tampered": {"network": "RED10-8", "url": f"{base}/red.ckpt", "sha256": "0" * 64},
        "untrained": {"network": "DnCNN-S", "recipe": "experiment=dncnn_s_gray25"},
    }
    (tmp_path / "zoo" / "index.yaml").write_text(yaml.safe_dump({"models": cards}))
    monkeypatch.setenv("DENOISE_ZOO", str(tmp_path / "zoo" / "index.yaml"))
    monkeypatch.setenv("DENOISE_CACHE", str(tmp_path / "cache"))
    return cards


def test_a_zoo_name_works_where_a_checkpoint_path_does(my_zoo: dict, tmp_path: Path) -> None:
    net, spec = load_network("zoo:shipped")
    assert spec["_target_"] == NET["_target_"] and sum(p.numel() for p in net.parameters()) > 0
    data = tiny_images(tmp_path / "images", count=1)
    results = evaluate(compose_cfg("evaluate", ["ckpt_path=zoo:shipped", f"data.test_dirs=[{data}]"], tmp_path / "e"))
    assert results["ckpt_path"] == "zoo:shipped"
    assert results["test/psnr"] == pytest.approx(results["test/psnr_noisy"], abs=1e-6)  # the identity network


def test_a_url_entry_is_downloaded_once_and_verified(my_zoo: dict, server: tuple[str, list[str]]) -> None:
    _, asked = server
    first = zoo.resolve("zoo:remote")
    second = zoo.resolve("zoo:remote")
    assert first == second and first.is_file() and zoo.sha256(first) == my_zoo["remote"]["sha256"]
    assert asked.count("/red.ckpt") == 1  # the second call used the cache


def test_a_mismatching_download_is_refused_and_not_kept(my_zoo: dict, tmp_path: Path) -> None:
    with pytest.raises(zoo.ZooError, match=r"zoo:tampered: http://.*: sha256 [0-9a-f]{64}, not the zoo's 0+; refused"):
        zoo.resolve("zoo:tampered")
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]  # neither the weights nor a part


def test_a_zoo_download_is_bounded_and_resumes(my_zoo: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The zoo downloads through denoise-data's download: a file over the zoo's limit is refused with nothing kept,
    and a part left by an interrupted download is resumed (the rest asked for by an HTTP Range), not started over."""
    limit = zoo.MAX_DOWNLOAD_BYTES
    monkeypatch.setattr(zoo, "MAX_DOWNLOAD_BYTES", 100)
    with pytest.raises(zoo.ZooError, match=r"zoo:remote: http://.*red\.ckpt is larger than the 100 bytes expected"):
        zoo.resolve("zoo:remote")
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    monkeypatch.setattr(zoo, "MAX_DOWNLOAD_BYTES", limit)
    digest = my_zoo["remote"]["sha256"]
    target = zoo.cache_dir() / f"remote-{digest[:12]}.ckpt"
    whole = (tmp_path / "www" / "red.ckpt").read_bytes()
    target.with_name(target.name + ".download").write_bytes(whole[:1000])  # what an interrupted try left
    ranges: list[str | None] = []
    real_urlopen = urllib.request.urlopen
    monkeypatch.setattr(
        urllib.request, "urlopen", lambda req, **kw: ranges.append(req.get_header("Range")) or real_urlopen(req, **kw)
    )
    assert zoo.resolve("zoo:remote") == target and target.read_bytes() == whole
    assert ranges == ["bytes=1000-"]


def test_untrained_and_unknown_names_say_what_to_do(my_zoo: dict) -> None:
    with pytest.raises(
        zoo.ZooError, match=r"zoo:untrained has no weights yet .* `python train.py experiment=dncnn_s_gray25`"
    ):
        zoo.resolve("zoo:untrained")
    with pytest.raises(zoo.ZooError, match=r"zoo:nope is not in the zoo; expected one of \['remote', 'shipped'"):
        zoo.resolve("zoo:nope")
    assert zoo.resolve("some/file.ckpt") == Path("some/file.ckpt")


def test_the_shipped_zoo_lists_the_paper_recipes() -> None:
    """Every card of the shipped zoo names a recipe that composes (its weights wait for a GPU run)."""
    from tests.helpers import CONF

    cards = yaml.safe_load(zoo.INDEX.read_text())["models"]
    assert {"dncnn_gray_s25", "dncnn_gray_blind", "red30_gray_s25", "mwcnn_gray_s25", "ffdnet_gray_blind"} <= set(cards)
    assert cards["ffdnet_gray_blind"]["paper"] == {"bsd68_s15": 31.63, "bsd68_s25": 29.19, "bsd68_s50": 26.29}
    assert cards["ffdnet_gray_blind"]["bm3d"] == {"bsd68_s15": 31.07, "bsd68_s25": 28.57, "bsd68_s50": 25.62}
    assert cards["ffdnet_color_blind"]["paper"] == {"cbsd68_s15": 33.87, "cbsd68_s25": 31.21, "cbsd68_s50": 27.96}
    assert cards["ffdnet_color_blind"]["bm3d"] == {"cbsd68_s15": 33.52, "cbsd68_s25": 30.71, "cbsd68_s50": 27.38}
    for card in cards.values():
        recipe = card["recipe"].removeprefix("experiment=")
        assert (CONF / "experiment" / f"{recipe}.yaml").is_file()


def write_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    (tmp_path / "team").mkdir(exist_ok=True)
    index = tmp_path / "team" / "index.yaml"
    index.write_text(text)
    monkeypatch.setenv("DENOISE_ZOO", str(index))
    monkeypatch.setenv("DENOISE_CACHE", str(tmp_path / "cache"))
    return index


@pytest.mark.parametrize(
    ("cards", "message"),
    [
        ({"../escape": {"url": "http://127.0.0.1:9/x", "sha256": "0" * 64}}, r"card name '\.\./escape' is not allowed"),
        ({"ok": {"file": "red.ckpt"}}, r"zoo:ok: its card in .* needs the sha256 of its weights"),
        ({"ok": {"file": "/etc/passwd", "sha256": "0" * 64}}, r"its file '/etc/passwd' must be a path inside"),
        ({"ok": {"file": "../outside.ckpt", "sha256": "0" * 64}}, r"its file '\.\./outside\.ckpt' must be a path"),
        ({"ok": {"url": "file:///etc/passwd", "sha256": "0" * 64}}, r"its url 'file:///etc/passwd' is not http\(s\)"),
        ({"ok": {"url": "http://127.0.0.1:9/x", "sha256": "short"}}, r"needs the sha256 of its weights \(64 hex"),
        ({"ok": "just a string"}, r"the card 'ok' is a str; expected a mapping"),
    ],
)
def test_unsafe_cards_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cards: dict, message: str) -> None:
    write_index(tmp_path, monkeypatch, yaml.safe_dump({"models": cards}))
    with pytest.raises(zoo.ZooError, match=message):
        zoo.resolve("zoo:ok")
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").rglob("*"))
    assert not (tmp_path / "cache" / f"escape-{'0' * 12}.ckpt").exists()  # zoo/../escape: outside the zoo cache


def test_a_zoo_name_with_a_path_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_index(tmp_path, monkeypatch, yaml.safe_dump({"models": {}}))
    with pytest.raises(zoo.ZooError, match=r"zoo:\.\./x: a zoo name has letters, digits"):
        zoo.resolve("zoo:../x")


@pytest.mark.parametrize("text", ["models: [unclosed", "- a list\n- of things\n", "models: 3\n"])
def test_a_malformed_index_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    index = write_index(tmp_path, monkeypatch, text)
    with pytest.raises(zoo.ZooError, match=str(index).replace(".", r"\.")):
        zoo.entries()


def test_two_zoo_cards_of_one_network_are_told_apart_by_their_card() -> None:
    from denoise.evaluation.comparison import unique_labels

    assert unique_labels(["DnCNN", "DnCNN", "REDNet"], ["zoo:a", "zoo:b", "zoo:c"]) == [
        "DnCNN (zoo:a)", "DnCNN (zoo:b)", "REDNet"]  # fmt: skip
