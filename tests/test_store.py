"""The schema is owned by Alembic: migrate from empty, down and up again, refuse a newer database."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from annotator.errors import DatabaseError
from annotator.project import find_project
from annotator.store import db

TABLES = {
    "documents",
    "codebooks",
    "prompts",
    "coders",
    "runs",
    "annotations",
    "llm_cache",
    "embeddings",
    "metrics",
    "splits",
    "run_documents",
}


def test_empty_database_migrates_to_head(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    assert db.current_revision(engine) is None
    db.ensure_schema(engine)
    assert db.current_revision(engine) == db.head_revision()
    assert set(inspect(engine).get_table_names()) >= TABLES


def test_downgrade_to_base_and_upgrade_again(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    db.upgrade(engine)
    db.downgrade(engine, "base")
    assert not TABLES & set(inspect(engine).get_table_names())
    db.upgrade(engine)
    assert set(inspect(engine).get_table_names()) >= TABLES


def test_upgrade_from_0002_gives_existing_runs_their_asked_sets(tmp_path: Path) -> None:
    """Runs stored before asked sets existed get the documents they answered; imports get none."""
    from sqlmodel import Session

    from annotator.store.asked import asked_sets
    from annotator.store.models import Annotation, Coder, Document, Run

    engine = db.make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    db.upgrade(engine)
    with Session(engine) as session:
        docs = [Document(doc_key=f"d{i}", text=f"text {i}", text_sha256=f"{i:064d}") for i in range(4)]
        llm, human = Coder(name="openai/x", kind="llm"), Coder(name="alice", kind="human")
        session.add_all([*docs, llm, human])
        session.flush()
        llm_run = Run(coder_id=llm.id, kind="llm")  # type: ignore[arg-type]
        human_run = Run(coder_id=human.id, kind="human")  # type: ignore[arg-type]
        session.add_all([llm_run, human_run])
        session.flush()
        session.add_all(
            [Annotation(run_id=llm_run.id, document_id=d.id, label="x") for d in docs[:2]]  # type: ignore[arg-type]
            + [Annotation(run_id=human_run.id, document_id=d.id, label="x") for d in docs]  # type: ignore[arg-type]
        )
        session.commit()
        ids = (llm_run.id, human_run.id, [d.id for d in docs])
    db.downgrade(engine, "0002")
    assert "run_documents" not in inspect(engine).get_table_names()
    db.upgrade(engine)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT run_id, document_id FROM run_documents ORDER BY 2")).all()
    assert stored == [(ids[0], ids[2][0]), (ids[0], ids[2][1])]  # the LLM run's answered documents only
    with Session(engine) as session:
        asked = asked_sets(session, [ids[0], ids[1]])
    assert asked == {ids[0]: set(ids[2][:2]), ids[1]: set(ids[2])}  # an import: what it coded


def test_sqlite_pragmas(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == db.SQLITE_BUSY_TIMEOUT_MS


def test_database_from_a_newer_annotator_is_refused(project, cli) -> None:
    path = project.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'f00dcafe9999'")
    with pytest.raises(DatabaseError, match="newer version of annotator"):
        _ = find_project(project.root).engine
    result = cli("status")
    assert result.code == 2
    assert "written by a newer version of annotator (schema revision f00dcafe9999" in result.err
    assert "Traceback" not in result.err and result.err.count("\n") == 1


def test_db_upgrade_command_reports_the_revision(project, cli) -> None:
    result = cli("db", "current")
    assert result.code == 0 and db.head_revision() in result.out
    assert cli("db", "upgrade").code == 0


@pytest.mark.slow
def test_installed_wheel_finds_its_migrations_and_examples(tmp_path: Path) -> None:
    """A non-editable install carries migrations/, codebooks/ and prompts/ inside the package."""
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "wheel"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(root),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(out.glob("annotator-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "annotator/_migrations/env.py" in names
    assert "annotator/_examples/codebooks/sentiment.yaml" in names
    assert "annotator/data/datasets/hutto_icwsm2014.zip" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    script = (
        "import annotator, annotator.resources as r, sys;"
        "from annotator.project import init_project;"
        f"assert annotator.__file__.startswith({str(site)!r}), annotator.__file__;"
        f"assert str(r.migrations_dir()).startswith({str(site)!r});"
        f"p = init_project(__import__('pathlib').Path({str(tmp_path / 'p')!r}), example='sentiment');"
        "from annotator.store import db; print(db.current_revision(p.engine))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == db.head_revision()


def test_migrations_match_the_models(tmp_path: Path) -> None:
    """A model changed without a migration would show up here as a difference."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    engine = db.make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    db.upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []


@pytest.mark.parametrize("folder", ["café/p", "dir ü/p", "日本/p", "100%/p"])
def test_unicode_spaces_and_percent_in_the_project_path(
    cli, tmp_path: Path, monkeypatch, folder: str
) -> None:
    """Alembic reads its options through configparser, where '%' starts an interpolation: a project under
    '100%' gave a 63-line traceback. Init, open, migrate, export and report all work there."""
    monkeypatch.chdir(tmp_path)
    assert cli("init", folder, "--example", "sentiment").code == 0
    project = ["--project", folder]
    assert cli(*project, "import", "example", "rotten-tomatoes", "--n", "100").code == 0
    assert cli(*project, "db", "upgrade").code == 0
    out = tmp_path / folder / "out 100% ü"
    out.mkdir()
    assert cli(*project, "export", "1", "--out", str(out / "labels.csv")).code == 0
    assert cli(*project, "report", "--out", str(out / "report.html")).code == 0
    assert (out / "labels.csv").stat().st_size > 0 and (out / "report.html").stat().st_size > 0


def test_an_empty_database_file_is_refused_except_by_init(cli, project) -> None:
    """SQLite takes a 0-byte file as a new database: a truncated project must not become an empty one."""
    db_file = project.root / "annotator.db"
    project.engine.dispose()
    db_file.write_bytes(b"")
    result = cli("--project", str(project.root), "status")
    assert result.code == 2 and "is empty (0 bytes)" in result.err and "annotator init" in result.err
    assert db_file.stat().st_size == 0  # nothing written
    (project.root / "annotator.toml").unlink()
    assert cli("init", str(project.root)).code == 0
    assert db_file.stat().st_size > 0


def test_a_read_only_engine_reads_creates_no_file_and_writes_nothing(tmp_path: Path) -> None:
    """make_engine(read_only=True) (what a database this process cannot write gets): SQLite's immutable
    open, so no -wal/-shm appears beside it; a write through the session or through Core is a DatabaseError."""
    from sqlmodel import select

    from annotator.store.models import Coder, Metric

    path = tmp_path / "a.db"
    writable = db.make_engine(f"sqlite:///{path}")
    db.ensure_schema(writable)
    with db.transaction(writable) as session:
        session.add(Coder(name="ann", kind="human"))
    writable.dispose()
    before = path.read_bytes()
    engine = db.make_engine(f"sqlite:///{path}", read_only=True)
    assert db.is_read_only(engine) and not db.is_read_only(writable)
    db.ensure_schema(engine)  # at head: nothing to do
    with db.transaction(engine) as session:
        assert [c.name for c in session.exec(select(Coder)).all()] == ["ann"]
        session.add(Metric(kind="agreement", params={}, result={}))  # a stored figure: dropped
        session.flush()
    assert db.dropped_writes(engine) == 1
    with (
        pytest.raises(DatabaseError, match="this command writes to the database"),
        db.transaction(engine) as s,
    ):
        s.add(Coder(name="bob", kind="human"))
    with pytest.raises(DatabaseError, match="read-only"), db.transaction(engine) as s:
        s.connection().execute(text("INSERT INTO coders (name, kind) VALUES ('eve', 'human')"))
    engine.dispose()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.db"] and path.read_bytes() == before


def test_a_read_only_open_of_an_old_schema_says_it_needs_a_writable_open(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    writable = db.make_engine(f"sqlite:///{path}")
    db.upgrade(writable, "0001")
    writable.dispose()
    engine = db.make_engine(f"sqlite:///{path}", read_only=True)
    with pytest.raises(DatabaseError, match=r"schema revision 0001 .* `annotator db upgrade`"):
        db.ensure_schema(engine)
    assert db.current_revision(engine) == "0001"  # not migrated


def test_not_writable_names_the_file_the_sidecar_or_the_folder(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "a.db"
    path.write_bytes(b"x")
    assert db.not_writable(path) is None
    denied: set[Path] = set()
    monkeypatch.setattr(db.os, "access", lambda p, mode: Path(p) not in denied)
    denied.add(path)
    assert db.not_writable(path) == path
    denied.clear()
    shm = tmp_path / "a.db-shm"
    shm.write_bytes(b"")
    denied.add(shm)
    assert db.not_writable(path) == shm
    denied.clear()
    shm.unlink()
    denied.add(tmp_path)  # the folder SQLite creates annotator.db-wal and -shm in
    assert db.not_writable(path) == tmp_path
    assert "chmod u+w" in db.how_to_write(tmp_path) and "the folder" in db.how_to_write(tmp_path)
