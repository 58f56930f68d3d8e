"""The import layers, checked by walking every module's imports: every package on its floor imports only the
floors below it (the ground floor, ``denoise.data``, ``denoise.models`` and ``denoise.config``, nothing above
it), nothing imports the entry points, and only the tasks and the entry points know Hydra."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import ROOT

PACKAGE = ROOT / "denoise"

#: the whole stack, floor by floor: a module imports only its own package and the floors below it (the ground
#: floor nothing of the suite but itself), so no import runs upward or sideways and no two packages form a circle
FLOORS = {
    "denoise.data": 1, "denoise.models": 1, "denoise.config": 1, "denoise.provenance": 1,
    "denoise.inference": 2, "denoise.zoo": 2,
    "denoise.evaluation": 3, "denoise.checkpoint": 3,
    "denoise.training": 4, "denoise.eda": 4,
    "denoise.tasks": 5,
    "denoise.cli": 6,
}  # fmt: skip
#: modules that may import Hydra (the config machinery): the entry points, the jobs and the resolvers
HYDRA_ALLOWED = ("denoise.cli", "denoise.tasks", "denoise.config.resolvers", "denoise.training.search")


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(module: str, path: Path) -> set[str]:
    """Every module ``module`` imports, at the top or inside functions (relative imports resolved)."""
    names = set()
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


MODULES = _modules()


def test_the_walk_sees_the_package() -> None:
    assert {"denoise.data.datamodule", "denoise.models.rednet", "denoise.cli.train", "denoise.tasks.training"} <= set(
        MODULES
    )
    assert "denoise.tasks.compose" in _imports("denoise.tasks.training", MODULES["denoise.tasks.training"])


def _room(module: str) -> str:
    """The package (or loose module) of ``denoise`` that ``module`` belongs to."""
    return ".".join(module.split(".")[:2])


def test_every_room_has_a_floor() -> None:
    rooms = {_room(module) for module in MODULES if module != "denoise"}
    assert rooms == set(FLOORS), f"without a floor: {sorted(rooms - set(FLOORS))}, gone: {sorted(set(FLOORS) - rooms)}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_runs_upward(module: str) -> None:
    imported = {name for name in _imports(module, MODULES[module]) if name.startswith("denoise.")}
    if module != "denoise":  # the package's face (its version) sits above the house
        room = _room(module)
        wrong = sorted(
            name for name in imported
            if _room(name) != room and _room(name) in FLOORS and FLOORS[_room(name)] >= FLOORS[room]
        )  # fmt: skip
        assert not wrong, f"{module} (floor {FLOORS[room]}) imports {wrong}: not below it"
    if not module.startswith("denoise.cli"):
        assert not [n for n in imported if n.startswith("denoise.cli")], f"{module} imports an entry point"
    if not module.startswith(HYDRA_ALLOWED):
        hydra = sorted(n for n in _imports(module, MODULES[module]) if n == "hydra" or n.startswith("hydra."))
        assert not hydra, f"{module} imports Hydra {hydra}: only the tasks and the entry points know the config"


def test_the_house_rules_hold() -> None:
    """Thin rooms: no function over 60 lines and no file over 300 lines in the package."""
    too_long = []
    for module, path in MODULES.items():
        text = path.read_text()
        if len(text.splitlines()) > 300:
            too_long.append(f"{module}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno >= 60:
                too_long.append(f"{module}.{node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert not too_long, too_long


def test_a_handful_of_modules_sit_loose() -> None:
    """Modules are grouped by role (training/, evaluation/, inference/, config/, data/, models/, tasks/, cli/, eda/,
    zoo/): at most a handful sit loose at the top of the package."""
    loose = sorted(m for m in MODULES if m.count(".") == 1 and not (PACKAGE / m.split(".")[1]).is_dir())
    assert loose == ["denoise.checkpoint", "denoise.provenance"]
