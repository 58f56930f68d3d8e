"""The README runs as written from a fresh clone: every command of its fenced ``bash`` blocks is checked without
running the long ones. Hydra commands compose with their overrides; argparse commands parse their arguments;
scripts named exist; every folder of the data folder a command reads is one that ``denoise-data get`` fetches (or
a file the README says how to make), and is named through the data folder (``${paths.data_dir}/...``,
``"${DENOISE_DATA:-data}/..."``), so that the command runs unchanged from any folder once ``DENOISE_DATA`` is set;
no command names ``../shared`` (a user's clone has none beside it).

Placeholders (``...``, ``<run>``, ``CKPT``, ``DIR``, ``/data/...``: a user's own) are skipped, as are commands of
other tools (pip, pytest, sudo, wandb, kill)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from denoise.data.catalog import catalog
from tests.helpers import ROOT, compose_cfg

README = (ROOT / "README.md").read_text()
HYDRA = {"train.py": "train", "evaluate.py": "evaluate", "denoise-train": "train", "denoise-evaluate": "evaluate",
         "denoise-eda": "eda", "denoise-prepare": "train"}  # fmt: skip
ARGPARSE = ("denoise-predict", "denoise-export", "denoise-zoo", "denoise-data")
OTHER_TOOLS = (
    "pip",
    "pytest",
    "sudo",
    "wandb",
    "kill",
    "make",
    "export",
    "mkdir",
    "cd",
    "source",
    "git",
    "python",
    "python3",
)
#: placeholders the README writes where the user puts their own paths or values
PLACEHOLDER = re.compile(r"\.\.\.|<[^>]+>|\bCKPT\b|\bDIR\b|\bINPUT\b|\bOUT_DIR\b|^/data/|=/data/|\[/data/|\[--|^\[")


def commands() -> list[str]:
    found = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"):
                found += [part.strip() for part in line.split("&&")]
    return found


def words(command: str) -> list[str]:
    tokens = shlex.split(command.replace("$HOME", str(Path.home())))
    while tokens and re.match(r"^[A-Z_]+=", tokens[0]):  # VAR=value prefixes
        tokens = tokens[1:]
    if tokens and tokens[0] in ("python", "python3") and len(tokens) > 1 and tokens[1] not in ("-c", "-m"):
        tokens = tokens[1:]  # python train.py -> train.py
    return tokens


def test_no_command_names_the_developers_shared_folder() -> None:
    assert "../shared" not in README


def test_the_readme_has_its_two_first_commands() -> None:
    first = re.search(r"```bash\n(.*?)```", README, re.S)
    assert first is not None
    lines = first.group(1).strip().splitlines()
    assert lines[0].startswith(
        'python3 -m venv .venv && source .venv/bin/activate && pip install torch==2.13.0 && pip install -e ".[dev]" '
        "&& python train.py"
    )
    assert lines[1].startswith("pytest")


FETCHED = {Path(entry.target).name for entry in catalog().values()}
#: files the README says how to make by hand (denoise-data get prints the steps) or that earlier commands write
MADE = {"reference", "weights"}


#: how a command names a folder of the data folder: ${paths.data_dir}/X (Hydra), ${DENOISE_DATA:-data}/X (a shell)
THROUGH_DATA_DIR = r"(?:\$\{paths\.data_dir\}|\$\{DENOISE_DATA:-data\})/"
#: a path that reads the data folder relative to wherever the command runs (broken once DENOISE_DATA is set)
RELATIVE_DATA = re.compile(r"(?:^|[\[=,])data/[A-Za-z0-9_]+")


def data_folders(tokens: list[str]) -> list[str]:
    """The first folder under the data folder of every path a command names."""
    return re.findall(r"(?:^|[\[=,\s])(?:" + THROUGH_DATA_DIR + r"|data/)([A-Za-z0-9_]+)", " ".join(tokens))


def hydra_overrides(tokens: list[str]) -> list[str]:
    """The overrides to compose with: sweeps reduced to their first value, placeholders and hydra.* left out."""
    kept = []
    for token in tokens:
        if "=" not in token or token.startswith("-") or PLACEHOLDER.search(token) or token.startswith("hydra."):
            continue
        key, _, value = token.partition("=")
        if "," in value and not value.startswith("[") and not key.startswith(("+", "~")):
            value = value.split(",")[0]  # -m a,b,c: compose the first
        kept.append(f"{key}={value}")
    return kept


@pytest.mark.parametrize("command", [c for c in commands() if words(c) and words(c)[0] in HYDRA])
def test_each_hydra_command_composes(command: str, tmp_path: Path) -> None:
    tokens = words(command)
    for folder in data_folders(tokens):
        assert folder in FETCHED | MADE, f"{command}: data/{folder} is neither fetched by denoise-data nor made"
    overrides = hydra_overrides(tokens[1:])
    compose_cfg(HYDRA[tokens[0]], overrides, tmp_path / "run")


def test_no_command_reads_the_data_folder_relative_to_where_it_runs() -> None:
    """``data.test_dirs=[data/set12]`` reads ./data/set12 whatever DENOISE_DATA says (the report: with
    DENOISE_DATA set, evaluate.py proposed a new download into ./data); the README names the data folder."""
    relative = [command for command in commands() if any(RELATIVE_DATA.search(token) for token in words(command))]
    assert not relative, relative


THROUGH_HYDRA = [c for c in commands() if words(c) and words(c)[0] in HYDRA and re.search(THROUGH_DATA_DIR, c)]


@pytest.mark.parametrize("command", THROUGH_HYDRA)
def test_the_data_a_hydra_command_reads_follows_denoise_data(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run from another folder with DENOISE_DATA elsewhere, every path the command names through the data folder
    lands there."""
    elsewhere = tmp_path / "elsewhere" / "data"
    monkeypatch.setenv("DENOISE_DATA", str(elsewhere))
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    tokens = words(command)
    cfg = compose_cfg(HYDRA[tokens[0]], hydra_overrides(tokens[1:]), tmp_path / "run")
    keys = ("ckpt_path", "data.test_dirs", "data.train_dirs", "data.val_dirs")
    named = [key for key in keys if re.search(THROUGH_DATA_DIR, " ".join(t for t in tokens if t.startswith(key)))]
    assert named, command
    for key in named:
        value = OmegaConf.select(cfg, key)
        paths = list(value) if OmegaConf.is_list(value) else [value]
        assert all(str(path).startswith(f"{elsewhere}/") for path in paths), (key, paths)


@pytest.mark.parametrize("command", [c for c in commands() if words(c) and words(c)[0] in ARGPARSE])
def test_each_plain_command_parses(command: str) -> None:
    tokens = words(command)
    for folder in data_folders(tokens):
        assert folder in FETCHED | MADE, f"{command}: data/{folder} is neither fetched by denoise-data nor made"
    if any(t.startswith("[") for t in tokens):
        return  # a synopsis line (`denoise-predict CKPT INPUT... -o OUT_DIR [--tile 512 ...]`), not a command
    module = __import__(f"denoise.cli.{tokens[0].removeprefix('denoise-')}", fromlist=["build_parser"])
    module.build_parser().parse_args(tokens[1:])
    if tokens[0] == "denoise-data" and tokens[1:2] == ["get"]:
        assert set(tokens[2:]) - {"--unverified"} <= set(catalog()), command


@pytest.mark.parametrize("command", [c for c in commands() if (words(c) and re.match(r"^(bench|scripts)/", words(c)[0]))
                                     or (len(words(c)) > 1 and words(c)[0] == "bash")])  # fmt: skip
def test_each_script_named_exists(command: str) -> None:
    tokens = words(command)
    script = tokens[1] if tokens[0] == "bash" else tokens[0]
    assert (ROOT / script).is_file(), command


def test_every_command_is_checked_or_another_tools() -> None:
    """No README command slips through: each is a Hydra command, an argparse command, a script, or a named
    other tool's."""
    unchecked = []
    for command in commands():
        tokens = words(command)
        first = tokens[0] if tokens else ""
        known = (first in HYDRA or first in ARGPARSE or first in OTHER_TOOLS or first == "bash"
                 or re.match(r"^(bench|scripts)/", first) or first == "denoise-models")  # fmt: skip
        if not known:
            unchecked.append(command)
    assert not unchecked, unchecked


def test_every_file_the_readme_names_exists() -> None:
    """Paths of the checkout named in the prose (tests, benchmarks, modules, configs) exist: no stale names."""
    named = set(re.findall(r"`((?:tests|bench|denoise|conf|scripts|docs)/[\w./-]+\.(?:py|sh|yaml|md|png|jpg))", README))
    named |= set(re.findall(r"\]\(((?:docs)/[\w./-]+)\)", README))
    missing = sorted(path for path in named if not (ROOT / path).exists() and "mine" not in path)
    assert named and not missing, missing


def test_the_table_of_contents_lists_every_section() -> None:
    sections = re.findall(r"^## (.+)$", README, re.M)
    contents = README[README.index("**Contents.**") : README.index("\n## ")]
    for title in sections:
        anchor = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        assert f"(#{anchor})" in contents, title
