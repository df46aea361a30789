"""The faces' layer rule (issue 12): parse -> call one service -> render; the CLI and the web pages alike.

Every module in annotator/cli/ is read with ast, imports inside functions (and under TYPE_CHECKING) included,
relative ones resolved. The CLI reaches the database and the data only through services: it imports no
annotator.store and no annotator.data module. Its modules do not import the package that imports them (no
import cycle through annotator.cli), and each stays a small module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import is_annotator_module, module_imports

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / "annotator" / "cli"
WEB = ROOT / "annotator" / "web"
FORBIDDEN = ("annotator.store", "annotator.data")
MAX_LINES = 400

# Imports that break the rule and are left on purpose, each with why. Keep it empty when you can.
ALLOWED: dict[tuple[str, str], str] = {}  # (module, import) -> why; empty: the CLI reaches no store module


def _imports(path: Path) -> list[tuple[str, int]]:
    return module_imports(path, f"annotator.{path.parent.name}")


def _modules() -> list[Path]:
    return sorted(CLI.glob("*.py")) + sorted(WEB.glob("*.py"))


def test_the_scan_sees_lazy_relative_and_module_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from annotator import store\n"
        "def f():\n    from annotator.store.db import x\n    from ..data import corpus\n"
        "    import annotator.store.models\n"
    )
    names = {name for name, _ in _imports(sample)}
    assert {
        "annotator.store",
        "annotator.store.db",
        "annotator.data.corpus",
        "annotator.store.models",
    } <= names


@pytest.mark.parametrize("path", _modules(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_cli_imports_no_store_or_data_module(path: Path) -> None:
    bad = [
        f"{path.name}:{line}: {name}"
        for name, line in _imports(path)
        if name.startswith(FORBIDDEN) and (path.name, name) not in ALLOWED
    ]
    assert not bad, "the CLI reaches the store and the data through a service: " + ", ".join(bad)


def test_the_allow_list_holds_only_imports_that_are_still_there() -> None:
    present = {(path.name, name) for path in _modules() for name, _ in _imports(path)}
    assert set(ALLOWED) <= present, f"drop these from ALLOWED: {set(ALLOWED) - present}"


@pytest.mark.parametrize("path", [p for p in _modules() if p.name != "__init__.py"], ids=lambda p: p.name)
def test_no_cli_module_imports_the_cli_package(path: Path) -> None:
    """annotator/cli/__init__.py imports every command module; one taking a name from it (its main, its app)
    is an import cycle. Importing a sibling module (annotator.cli.common) is fine."""
    cycle = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            target = "annotator.cli" if node.level == 1 and not node.module else node.module
            if target == "annotator.cli":
                cycle += [
                    f"{path.name}:{node.lineno}: {alias.name}"
                    for alias in node.names
                    if not is_annotator_module(f"annotator.cli.{alias.name}")
                ]
        elif isinstance(node, ast.Import):
            cycle += [f"{path.name}:{node.lineno}" for alias in node.names if alias.name == "annotator.cli"]
    assert not cycle, f"names taken from the annotator.cli package by a command module: {cycle}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.name)
def test_cli_modules_stay_small(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.name} has {lines} lines: split it (one module per command group)"
