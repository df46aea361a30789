"""Shared fixtures: every test gets its own temp project with a real SQLite file."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlmodel import col, select

from annotator.cli import main
from annotator.data.corpus import import_documents
from annotator.llm.spec import RunRequest
from annotator.project import DB_ENV, Project, init_project
from annotator.services import run as runner
from annotator.services.run import RunOutcome
from annotator.services.workbench import accounts, coding
from annotator.services.workbench.assign import assign
from annotator.store.models import Annotation, CoderAccount, Document, Run
from tests.scripted_server import Label, Rule, ScriptedServer


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's database override or API keys."""
    monkeypatch.delenv(DB_ENV, raising=False)
    for key in list(os.environ):
        if key.endswith("_API_KEY"):
            monkeypatch.delenv(key)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked ``both_databases`` (or in a module so marked) runs twice: its project on SQLite and on a
    real PostgreSQL server; one also marked ``sqlite_only`` (about SQLite itself) runs on SQLite only."""
    node = metafunc.definition
    if "database" in metafunc.fixturenames and node.get_closest_marker("both_databases"):
        kinds = ["sqlite"] if node.get_closest_marker("sqlite_only") else ["sqlite", "postgresql"]
        metafunc.parametrize("database", kinds, indirect=True)


@pytest.fixture
def database(request: pytest.FixtureRequest) -> str:
    """The project's database: sqlite, or postgresql for ``both_databases`` tests (their second run)."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture(scope="session")
def postgres_socket() -> Iterator[str]:
    """A throw-away PostgreSQL cluster for this test session (tests/postgres_server.py)."""
    from tests.postgres_server import binaries, cluster

    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.fail("psycopg is missing: pip install -e '.[all,dev]' (`make test` does it)")
    if binaries() is None:
        if os.environ.get("ANNOTATOR_SKIP_POSTGRES") == "1":
            pytest.skip("ANNOTATOR_SKIP_POSTGRES=1 and no PostgreSQL")
        pytest.fail(
            "PostgreSQL is not installed: apt-get install -y postgresql (`make test` does it as root), or set "
            "ANNOTATOR_SKIP_POSTGRES=1 to run the both_databases tests on SQLite only"
        )
    with cluster() as sock:
        yield sock


@pytest.fixture
def project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, database: str
) -> Iterator[Project]:
    """A fresh project with the sentiment example, and the current directory inside it; on PostgreSQL (a
    database of its own on the session's server) when ``database`` says so."""
    url = None
    if database == "postgresql":
        from tests.postgres_server import new_database

        url = new_database(request.getfixturevalue("postgres_socket"))
    proj = init_project(tmp_path / "proj", example="sentiment", database_url=url)
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
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return "\n".join(conn.iterdump())
    from sqlalchemy import MetaData, text

    meta = MetaData()
    meta.reflect(project.engine)
    lines = []
    with project.engine.connect() as conn:
        for name in sorted(meta.tables):
            for row in conn.execute(text(f'SELECT * FROM "{name}"')).all():
                lines.append(f"{name}: {sorted(map(repr, row))}")
    return "\n".join(sorted(lines))


def label_by_word(labels_by_word: dict[str, str], default: str = "positive") -> Callable[[str], str]:
    """A scripted model's answers: the label of the first word found in the text, else ``default``."""

    def label_for(text: str) -> str:
        return next((label for word, label in labels_by_word.items() if word in text), default)

    return label_for


# -- documents that a scripted model can tell apart -------------------------------------------------------


def word_texts(keys: Sequence[str]) -> dict[str, str]:
    """A text per key that carries the key's own word (``word<key>``): see :func:`copying`."""
    return {k: f"word{k} sentence about a film" for k in keys}


def import_docs(
    project: Project,
    tmp_path: Path,
    texts: Mapping[str, str],
    split: str | Mapping[str, str] | None = "dev",
    columns: Mapping[str, Sequence[str]] | None = None,
    id_column: str = "id",
) -> dict[str, str]:
    """Import ``texts`` (key -> text) from a CSV, with metadata ``columns`` (name -> a value per document),
    into ``split`` (one split for all, key -> split, or None: unsplit); returns ``texts``."""
    columns = dict(columns or {})
    header = ",".join([id_column, "text", *columns])
    rows = "".join(
        ",".join([k, f'"{t}"', *(str(values[i]) for values in columns.values())]) + "\n"
        for i, (k, t) in enumerate(texts.items())
    )
    import_documents(project, write(tmp_path / "docs.csv", f"{header}\n{rows}"), id=id_column)
    if split is not None:
        with project.transaction() as s:
            for d in s.exec(select(Document)).all():
                d.split = split if isinstance(split, str) else split[d.doc_key]
                s.add(d)
    return dict(texts)


def copying(keys: Sequence[str], labels: Sequence[str], default: str = "positive") -> Callable[[str], str]:
    """A scripted model's answers that copy ``labels`` onto the documents of ``keys`` (found by the word
    of :func:`word_texts`, followed by a space so that k1 is not found in k10's text)."""
    return label_by_word({f"word{k} ": lab for k, lab in zip(keys, labels, strict=True)}, default)


def flip(labels: Sequence[str], where: Collection[int]) -> list[str]:
    """``labels`` with the label at the indices ``where`` made wrong: positive becomes negative, else positive."""
    return [
        ("negative" if x == "positive" else "positive") if i in where else x for i, x in enumerate(labels)
    ]


def model_answers(
    gold: Sequence[str],
    *,
    wrong: Collection[int] = (),
    uncertain: Collection[int] = (),
    invalid: Collection[int] = (),
) -> list[str]:
    """A scripted model's answers to documents coded ``gold``: wrong at ``wrong`` (see :func:`flip`), the
    codebook's uncertain label 'neutral' at ``uncertain``, 'bogus' (no codebook label) at ``invalid``."""
    answers = flip(gold, wrong)
    return ["bogus" if i in invalid else "neutral" if i in uncertain else a for i, a in enumerate(answers)]


REASKED = "That answer is not valid"  # how the engine's re-ask of an invalid answer begins


def stays_invalid(label: str = "bogus") -> Rule:
    """A scripted server rule: a re-ask (a turn that carries no document) is answered with ``label`` again,
    so a document whose first answer is not a codebook label is stored invalid, as a real run stores it."""
    return lambda text, attempt: Label(label) if REASKED in text else None


# -- scripted LLM runs -------------------------------------------------------------------------------------


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
    rule: Rule | None = None,
) -> RunOutcome:
    """A real LLM run (the whole engine) against a scripted endpoint that answers ``label_for(text)`` (or
    what ``rule`` says); ``sample``/``seed``: a seeded `--sample` run, whose asked set is the documents it drew."""
    from annotator.llm.spec import RunRequest
    from annotator.services import run as runner
    from tests.scripted_server import ScriptedServer

    with ScriptedServer(label_for=label_for, rule=rule) as server:
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


def copy_run(project: Project, keys: Sequence[str], labels: Sequence[str], **kw) -> int:
    """A scripted LLM run (``kw`` as :func:`scripted_run`) whose model copies ``labels`` onto the documents
    of ``keys`` (see :func:`copying`) and which runs to the end; its id."""
    outcome = scripted_run(project, copying(keys, labels), **kw)
    assert outcome.status == "done"
    return outcome.run_id


# -- runs against a scripted endpoint, step by step (test_labeling, test_storm, test_selection) --------------


def film_texts(words: Sequence[str]) -> dict[str, str]:
    """d00, d01, ... -> "<word> film, lovely acting"; "awful acting" for every third (d00, d03, ...), which a
    scripted model told by :func:`label_by_word` ``({"awful": "negative"})`` answers negative."""
    return {
        f"d{i:02d}": f"{w} film, {'awful' if i % 3 == 0 else 'lovely'} acting" for i, w in enumerate(words)
    }


def import_parts(
    project: Project, tmp_path: Path, texts: Mapping[str, str], test_from: int
) -> dict[str, str]:
    """:func:`import_docs` with the split in a "part" column too, as a user's file carries it: dev, and test
    from the ``test_from``-th document on; returns ``texts``."""
    parts = ["test" if i >= test_from else "dev" for i in range(len(texts))]
    return import_docs(
        project, tmp_path, texts, split=dict(zip(texts, parts, strict=True)), columns={"part": parts}
    )


def scripted_request(server: ScriptedServer, **kw) -> RunRequest:
    """A run of the sentiment zero-shot prompt against the scripted ``server``; ``kw``: the request's other
    fields (a test module binds its own defaults with functools.partial)."""
    from annotator.llm.spec import RunRequest

    defaults = {
        "prompt": "sentiment/zero-shot.v1",
        "model": "openai-compatible/scripted",
        "base_url": server.base_url,
    }
    return RunRequest(**{**defaults, **kw})


def scripted_args(server: ScriptedServer) -> list[str]:
    """The command-line options of :func:`scripted_request`: the prompt, the model and the server's URL."""
    return [
        "--prompt",
        "sentiment/zero-shot.v1",
        "--model",
        "openai-compatible/scripted",
        "--base-url",
        server.base_url,
    ]


def run_annotations(project: Project, run_id: int) -> dict[str, Annotation]:
    """A run's stored annotations by document key."""
    from sqlmodel import col

    from annotator.store.models import Annotation

    with project.transaction() as s:
        rows = s.exec(
            select(Document.doc_key, Annotation).join(Annotation).where(col(Annotation.run_id) == run_id)
        )
        return {key: a for key, a in rows.all()}


# -- tests that download (marker `network`) ----------------------------------------------------------------


def package_index_url() -> str:
    """The index pip downloads from here: PIP_INDEX_URL, else pip's configured index-url, else PyPI."""
    url = os.environ.get("PIP_INDEX_URL", "")
    if not url:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "config", "get", "global.index-url"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        url = done.stdout.strip() if done.returncode == 0 else ""
    return url.split()[0] if url.strip() else "https://pypi.org/simple"


@functools.cache
def index_unreachable() -> str | None:
    """Why the package index cannot be reached, or None: one quick HEAD request, once a session (a bare
    socket connection is not enough: a proxy that intercepts TLS accepts any)."""
    url = package_index_url()
    parts = urlsplit(url)
    if parts.scheme == "file":
        return None if Path(parts.path).exists() else f"the package index {url} does not exist"
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=5).close()
    except urllib.error.HTTPError:
        return None  # it answered
    except (OSError, ValueError) as exc:
        return f"no network: the package index {url} cannot be reached ({exc})"
    return None


def skip_unless_index_reachable() -> None:
    """Skip the calling test (or fixture) when the package index cannot be reached."""
    reason = index_unreachable()
    if reason is not None:
        pytest.skip(reason)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("network") is not None:
        skip_unless_index_reachable()


ROOT = Path(__file__).resolve().parent.parent


def is_annotator_module(dotted: str) -> bool:
    """Whether ``dotted`` names a module or package of annotator (not a name inside one)."""
    if not dotted.startswith("annotator."):
        return False
    base = ROOT.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def module_imports(path: Path, package: str) -> list[tuple[str, int]]:
    """Every module the file at ``path`` (in ``package``) imports, as an absolute name with its line: imports
    inside functions and under TYPE_CHECKING included, relative ones resolved, and `from annotator import x`
    counted as importing annotator.x when that is a module. The layer tests read the tree with it."""
    import ast

    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.append((target, node.lineno))
            found += [
                (f"{target}.{alias.name}", node.lineno)
                for alias in node.names
                if is_annotator_module(f"{target}.{alias.name}")
            ]
    return found


# -- the workbench: coders, their codes, and an LLM run over what they coded (test_workbench, test_review) ----


def signed_in_as(project: Project, name: str) -> accounts.SignedIn:
    with project.transaction() as s:
        acc = s.exec(select(CoderAccount)).all()
    for a in acc:
        found = accounts.signed_in(project, a.id)  # type: ignore[arg-type]
        if found is not None and found.name == name:
            return found
    raise AssertionError(name)


def coder_codes(project: Project, name: str) -> dict[str, str]:
    from annotator.store.models import Coder, Document

    with project.transaction() as s:
        rows = s.exec(
            select(Document.doc_key, Annotation.label)
            .join(Annotation, col(Annotation.document_id) == col(Document.id))
            .join(Run, col(Run.id) == col(Annotation.run_id))
            .join(Coder, col(Coder.id) == col(Run.coder_id))
            .where(col(Coder.name) == name)
        ).all()
    return {k: v for k, v in rows if v is not None}


N = 40


def _label(n: int) -> str:
    return "negative" if n % 3 == 0 else "positive"


@pytest.fixture
def coded(project: Project, tmp_path: Path) -> dict[str, object]:
    """alice and bob code 30 documents each, 20 of them in common; they disagree on every fifth shared one. An
    LLM run then labels what the humans coded: it answers negative for "awful" texts (every third document),
    which agrees with the humans' labels except where they flipped."""
    texts = {
        f"d{i:02d}": ("awful film" if i % 3 == 0 else "lovely film") + f" number {i}" for i in range(N * 2)
    }
    import_docs(project, tmp_path, texts)
    lead = accounts.add_coder(project, "lena", "lead")
    alice = accounts.add_coder(project, "alice")
    bob = accounts.add_coder(project, "bob")
    assign(project, "alice,bob", n=30, overlap=20, seed=5)
    shared_disagreements = 0
    for name in ("alice", "bob"):
        who = signed_in_as(project, name)
        while (item := coding.next_item(project, who)) is not None:
            n = int(item.document[1:])
            label = _label(n)
            if name == "bob" and n % 5 == 0:
                label = "positive" if label == "negative" else "negative"
            coding.submit(project, who, item.document, label, seconds=3.0)
    with ScriptedServer(label_for=label_by_word({"awful": "negative"})) as server:
        outcome = runner.label(
            project,
            RunRequest(
                prompt="sentiment/zero-shot.v1",
                model="openai-compatible/scripted",
                base_url=server.base_url,
                coded_by=["alice", "bob"],
                split="dev",
                concurrency=4,
                retries=1,
            ),
        )
    assert outcome.status == "done"
    del shared_disagreements
    return {"run": outcome.run_id, "lead": lead, "alice": alice, "bob": bob}
