"""The README's Python examples run as written, on a new project made the way the README says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from annotator.llm import local

pytestmark = [pytest.mark.model, pytest.mark.slow]

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_python_examples() -> None:
    assert python_blocks()


@pytest.mark.parametrize("block", python_blocks(), ids=lambda b: b.splitlines()[0][:40])
def test_readme_python_example_runs(block: str, cli, tmp_path: Path, monkeypatch, capsys) -> None:
    local.ensure("smollm2")
    monkeypatch.chdir(tmp_path)
    assert cli("init", "myproject", "--example", "sentiment").code == 0
    project = ["--project", "myproject"]
    assert cli(*project, "import", "example", "rotten-tomatoes", "--n", "100", "--seed", "1").code == 0
    assert cli(*project, "split", "--test", "0.3", "--seed", "1", "--stratify-by-coder", "critics").code == 0
    capsys.readouterr()
    namespace: dict[str, object] = {}
    exec(compile(block, str(README), "exec"), namespace)
    outcome = namespace.get("outcome")
    if outcome is not None:
        assert getattr(outcome, "status", None) == "done"
    printed = capsys.readouterr().out
    if "print(" in block:
        assert printed.strip()
