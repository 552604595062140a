"""The dependency direction ``city_node → sync ← province_hub``, read from the source.

``sync`` (generated ``sync/pb`` aside) imports neither tier, and the two tiers never import
each other: everything they share is in ``sync`` or on the wire. ``fedsync`` reaches the
tiers' commands through the ``fedsync.tiers`` entry points declared in ``pyproject.toml``.
"""

from __future__ import annotations

import ast
import importlib
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from sync.commands import TIER_GROUP

REPO = Path(__file__).resolve().parents[2]
TIERS = ("city_node", "province_hub")


def _modules(package: str) -> list[Path]:
    root = REPO / package
    return sorted(p for p in root.rglob("*.py") if root / "pb" not in p.parents)


def _imported(source: str, filename: str) -> Iterator[tuple[int, str]]:
    """(line, module) for every absolute import, and for every ``import_module("…")`` /
    ``__import__("…")`` with a literal name, in ``source``."""
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:  # relative imports stay in their package
                yield node.lineno, node.module
        elif isinstance(node, ast.Call) and node.args:
            func, first = node.func, node.args[0]
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and isinstance(first, ast.Constant):
                yield node.lineno, str(first.value)


def _offences(modules: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in modules:
        for line, module in _imported(path.read_text("utf-8"), str(path)):
            if module.split(".")[0] in forbidden:
                found.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    return found


def test_the_checker_sees_every_kind_of_import() -> None:
    source = (
        "import city_node.app\n"
        "from province_hub import services\n"
        "def f():\n"
        "    from city_node.domain import Role\n"
        "    importlib.import_module('province_hub.cli')\n"
        "from . import sibling\n"
        "import sync.db\n"
    )
    modules = sorted(module for _, module in _imported(source, "<test>"))
    assert modules == [
        "city_node.app",
        "city_node.domain",
        "province_hub",
        "province_hub.cli",
        "sync.db",
    ]


def test_sync_imports_no_tier() -> None:
    modules = _modules("sync")
    names = {p.relative_to(REPO).as_posix() for p in modules}
    # The modules that once knew both tiers are among those checked; sync/pb is not.
    assert {"sync/cli.py", "sync/demo.py", "sync/commands.py"} <= names
    assert not any(name.startswith("sync/pb/") for name in names)
    assert _offences(modules, TIERS) == []


@pytest.mark.parametrize("tier", TIERS)
def test_the_tiers_never_import_each_other(tier: str) -> None:
    other = tuple(t for t in TIERS if t != tier)
    modules = _modules(tier)
    assert REPO / tier / "cli.py" in modules
    assert _offences(modules, other) == []


def test_each_tier_adds_its_commands_through_an_entry_point() -> None:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"][
        "entry-points"
    ][TIER_GROUP]
    assert declared == {
        "hub": "province_hub.cli:add_commands",
        "city": "city_node.cli:add_commands",
    }
    for target in declared.values():
        module, _, attr = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attr))
