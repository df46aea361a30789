"""annotator.toml is checked when a project opens: an unknown key or a wrong value is one line naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from annotator.errors import ProjectError
from annotator.project import init_project, load_project


@pytest.fixture
def root(tmp_path: Path) -> Path:
    project = init_project(tmp_path / "p")
    project.engine.dispose()
    return project.root


def _toml(root: Path) -> Path:
    return root / "annotator.toml"


def test_a_fresh_project_and_prices_load(root: Path) -> None:
    path = _toml(root)
    path.write_text(path.read_text() + '\n[prices."openai/gpt-4o-mini"]\ninput = 0.15\noutput = 0.6\n')
    project = load_project(root)
    assert project.config.prices["openai/gpt-4o-mini"].output == 0.6
    assert project.default_model == "local/smollm2" and project.name == "p"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace("default_model", "defualt_model"),
            r"annotator\.toml:5: unknown setting project\.defualt_model; known here: name, default_model",
        ),
        (
            lambda t: t + "\n[projetc]\nname = 'x'\n",
            r"annotator\.toml:11: unknown setting projetc; known here: project, database, prices",
        ),
        (
            lambda t: t + '\n[prices."openai/x"]\ninput = 1\noutpt = 2\n',
            r'annotator\.toml:13: unknown setting prices\."openai/x"\.outpt; known here: input, output',
        ),
        (
            lambda t: t + '\n[prices."openai/x"]\ninput = "cheap"\noutput = 2\n',
            r'annotator\.toml:12: prices\."openai/x"\.input: input should be a valid number',
        ),
        (
            lambda t: t.replace('url = "sqlite:///annotator.db"', "url = 5"),
            r"annotator\.toml:9: database\.url: input should be a valid string",
        ),
    ],
)
def test_a_wrong_setting_is_one_line_with_its_line(root: Path, edit, message: str, cli) -> None:
    path = _toml(root)
    path.write_text(edit(path.read_text()))
    with pytest.raises(ProjectError, match=message):
        load_project(root)
    result = cli("--project", str(root), "status")
    assert result.code == 2 and result.err.count("\n") == 1 and "Traceback" not in result.err
