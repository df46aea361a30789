"""Shared fixtures: every test gets its own temp project with a real SQLite file."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from annotator.cli import main
from annotator.project import DB_ENV, Project, init_project
from annotator.services.run import RunOutcome


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's database override or API keys."""
    monkeypatch.delenv(DB_ENV, raising=False)
    for key in list(os.environ):
        if key.endswith("_API_KEY"):
            monkeypatch.delenv(key)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    """A fresh project with the sentiment example, and the current directory inside it."""
    proj = init_project(tmp_path / "proj", example="sentiment")
    monkeypatch.chdir(proj.root)
    yield proj
    proj.engine.dispose()


class CLIResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"CLIResult(code={self.code}, out={self.out[-800:]!r}, err={self.err[-800:]!r})"


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Run the real CLI in-process: cli('status', '--json') -> CLIResult(code, out, err)."""

    def run(*args: str) -> CLIResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CLIResult(code, captured.out, captured.err)

    return run


@contextmanager
def umask(mask: int) -> Iterator[None]:
    """The process umask set to ``mask`` inside the block (files to share must follow it)."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding=encoding)
    return path


def db_snapshot(project: Project) -> str:
    """Every row of every table, to assert that a refused command wrote nothing."""
    import sqlite3

    url = project.database_url
    assert url.startswith("sqlite:///")
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        return "\n".join(conn.iterdump())


def label_by_word(labels_by_word: dict[str, str], default: str = "positive") -> Callable[[str], str]:
    """A scripted model's answers: the label of the first word found in the text, else ``default``."""

    def label_for(text: str) -> str:
        return next((label for word, label in labels_by_word.items() if word in text), default)

    return label_for


def scripted_run(
    project: Project,
    label_for: Callable[[str], str],
    *,
    prompt: str = "sentiment/zero-shot.v1",
    split: str = "dev",
    repeats: int = 1,
    tag: str | None = None,
    sample: int | None = None,
    seed: int = 0,
) -> RunOutcome:
    """A real LLM run (the whole engine) against a scripted endpoint that answers ``label_for(text)``;
    ``sample``/``seed``: a seeded `--sample` run, whose asked set is the documents it drew."""
    from annotator.llm.spec import RunRequest
    from annotator.services import run as runner
    from tests.scripted_server import ScriptedServer

    with ScriptedServer(label_for=label_for) as server:
        return runner.label(
            project,
            RunRequest(
                prompt=prompt,
                model="openai-compatible/scripted",
                base_url=server.base_url,
                split=split,
                repeats=repeats,
                concurrency=4,
                retries=1,
                tag=tag,
                sample=sample,
                seed=seed,
            ),
        )
