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

pytestmark = pytest.mark.both_databases

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
    with project.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00dcafe9999'"))
    project.engine.dispose()
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


@pytest.mark.sqlite_only  # a 0-byte SQLite file
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


# --- revision 0005: CHECK constraints on the closed vocabularies, added without losing a row -------------

CHECKED = [  # (table, column, a value the constraint refuses)
    ("documents", "split", "train"),
    ("coders", "kind", "robot"),
    ("runs", "kind", "robot"),
    ("runs", "status", "bogus"),
    ("annotations", "status", "maybe"),
    ("splits", "scope", "some"),
]


def _fill_at_0004(engine) -> None:
    """Rows in every table, every value of every vocabulary (written as SQL: the models are at head)."""
    from annotator.store.models import ANNOTATION_STATUSES, CODER_KINDS, RUN_STATUSES

    t = "'2026-12-01 10:00:00.000000'"
    with engine.begin() as conn:
        sql = conn.exec_driver_sql
        sql(f"INSERT INTO codebooks VALUES (1, 'cb', 1, '{'a' * 64}', 'body', {t})")
        sql(f"INSERT INTO prompts VALUES (1, 'cb', 'p', 1, '{'b' * 64}', 'body', '{{}}', {t}, {t}, NULL)")
        for i, split in enumerate(["dev", "test", None, "dev", None]):
            sql(
                "INSERT INTO documents (id, doc_key, text, text_sha256, meta, split, created_at) "
                f"VALUES ({i + 1}, 'd{i}', 'text {i}', '{i:064d}', '{{\"n\": {i}}}', ?, {t})",
                (split,),
            )
        for i, kind in enumerate(CODER_KINDS):
            sql(f"INSERT INTO coders VALUES ({i + 1}, 'coder {kind}', '{kind}', {t})")
        run = 0
        for c, kind in enumerate(CODER_KINDS):
            for status in RUN_STATUSES:
                run += 1
                sql(
                    "INSERT INTO runs (id, coder_id, kind, codebook_id, prompt_id, model, params, split, status, "
                    "started_at, n_items, n_ok, n_invalid, n_error, tokens_in, tokens_out, cost_usd, versions, "
                    f"sample, spec_sha256) VALUES ({run}, {c + 1}, '{kind}', 1, 1, 'm', '{{}}', 'dev', "
                    f"'{status}', {t}, 5, 1, 1, 1, 10, 20, 0.5, '{{}}', '{{}}', '{run:064d}')"
                )
                for d in range(1, 6):
                    status_a = ANNOTATION_STATUSES[(run + d) % len(ANNOTATION_STATUSES)]
                    sql(
                        "INSERT INTO annotations (run_id, document_id, repeat, label, status, created_at, "
                        f"attempts, cached) VALUES ({run}, {d}, 0, 'x', '{status_a}', {t}, 1, 0)"
                    )
                    sql(f"INSERT INTO run_documents VALUES ({run}, {d})")
                sql(
                    "INSERT INTO metrics (kind, run_id, split, params, result, created_at) "
                    f"VALUES ('agreement', {run}, 'dev', '{{}}', '{{\"alpha\": 0.5}}', {t})"
                )
        sql(
            f"INSERT INTO metrics (kind, run_id, params, result, created_at) VALUES ('compare', NULL, '{{}}', '{{}}', {t})"
        )
        for scope in ("all", "new"):
            sql(
                "INSERT INTO splits (created_at, test_fraction, seed, forced, n_dev, n_test, scope) "
                f"VALUES ({t}, 0.3, 1, 0, 3, 2, '{scope}')"
            )
        sql(f"INSERT INTO llm_cache VALUES ('{'c' * 64}', 'answer', '{{}}', {t}, NULL, 'm')")
        sql(f"INSERT INTO embeddings VALUES (1, 'e', '{'d' * 64}', 2, X'0001')")
        sql(f"INSERT INTO document_imports VALUES (1, {t}, 'docs.csv', 'id', 'text', 5)")


def _dump(engine) -> dict[str, list[tuple]]:
    """Every row of every table (the schema aside)."""
    with engine.connect() as conn:
        tables = [t for t in inspect(conn).get_table_names() if t != "alembic_version"]
        return {t: sorted(conn.exec_driver_sql(f'SELECT * FROM "{t}"').all(), key=repr) for t in tables}


def _indexes(engine) -> set[tuple]:
    with engine.connect() as conn:
        return set(
            conn.exec_driver_sql("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index'").all()
        )


def _checks(engine) -> dict[str, set[tuple[str, str]]]:
    found = {}
    for table, _, _ in CHECKED:
        found[table] = {(c["name"], c["sqltext"]) for c in inspect(engine).get_check_constraints(table)}
    return found


@pytest.fixture
def at_0004(tmp_path: Path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    db.upgrade(engine, "0004")
    _fill_at_0004(engine)
    return engine


def test_upgrade_to_0005_keeps_every_row_of_every_table(at_0004) -> None:
    before, indexes = _dump(at_0004), _indexes(at_0004)
    assert len(before["run_documents"]) == 80 and len(before["annotations"]) == 80
    assert len(before["runs"]) == 16 and len(before["metrics"]) == 17
    db.upgrade(at_0004, "0005")
    assert db.current_revision(at_0004) == "0005"
    assert _dump(at_0004) == before
    assert _indexes(at_0004) == indexes  # the rebuilt tables got their indexes back
    with at_0004.connect() as conn:
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1  # on again for the pooled connection
        assert conn.execute(text("PRAGMA foreign_key_check")).all() == []
        names = conn.exec_driver_sql("SELECT name FROM sqlite_master").scalars().all()
    assert not [n for n in names if n.startswith("_alembic_tmp")]


def test_the_database_refuses_values_outside_the_vocabularies(tmp_path: Path) -> None:
    from sqlalchemy.exc import IntegrityError
    from sqlmodel import Session

    from annotator.store.models import Coder, Document, Run

    engine = db.make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    db.upgrade(engine)
    with Session(engine) as session:
        coder = Coder(name="alice", kind="human")
        session.add(coder)
        session.commit()
        coder_id = coder.id
    with pytest.raises(IntegrityError, match="ck_runs_status"), Session(engine) as session:
        session.add(Run(coder_id=coder_id, kind="human", status="bogus"))  # type: ignore[arg-type]
        session.commit()
    with pytest.raises(IntegrityError, match="ck_documents_split"), Session(engine) as session:
        session.add(Document(doc_key="d", text="t", text_sha256="0" * 64, split="train"))  # type: ignore[arg-type]
        session.commit()
    with Session(engine) as session:  # the vocabularies themselves, and NULL splits, are accepted
        session.add(Run(coder_id=coder_id, kind="human", status="done"))  # type: ignore[arg-type]
        session.add(Document(doc_key="d", text="t", text_sha256="0" * 64))
        session.commit()


@pytest.mark.parametrize(("table", "column", "bad"), CHECKED)
def test_each_constraint_holds_after_the_upgrade(at_0004, table: str, column: str, bad: str) -> None:
    from sqlalchemy.exc import IntegrityError

    db.upgrade(at_0004)
    with pytest.raises(IntegrityError, match=f"ck_{table}_{column}"), at_0004.begin() as conn:
        conn.exec_driver_sql(f"UPDATE {table} SET {column} = ?", (bad,))


def test_downgrade_to_0004_and_upgrade_again_keep_every_row(at_0004) -> None:
    before, indexes = _dump(at_0004), _indexes(at_0004)
    db.upgrade(at_0004)  # to the head, and back down through every later revision
    assert all(_checks(at_0004).values())
    db.downgrade(at_0004, "0004")
    assert db.current_revision(at_0004) == "0004"
    assert not any(_checks(at_0004).values())
    assert _dump(at_0004) == before and _indexes(at_0004) == indexes
    with at_0004.begin() as conn:  # the constraints are gone with 0005
        conn.exec_driver_sql("UPDATE splits SET scope = 'some' WHERE id = 1")
        conn.exec_driver_sql("UPDATE splits SET scope = 'all' WHERE id = 1")
    db.upgrade(at_0004, "0005")
    assert _dump(at_0004) == before and _indexes(at_0004) == indexes
    assert all(_checks(at_0004).values())


def test_a_row_outside_a_vocabulary_stops_the_upgrade_in_one_line(at_0004) -> None:
    with at_0004.begin() as conn:
        conn.exec_driver_sql("UPDATE runs SET status = 'stale' WHERE id IN (1, 2)")
    before = _dump(at_0004)
    with pytest.raises(DatabaseError) as caught:
        db.ensure_schema(at_0004)
    message = str(caught.value)
    assert "runs.status holds 'stale' in 2 row(s)" in message and "\n" not in message
    assert db.current_revision(at_0004) == "0004" and _dump(at_0004) == before
    with at_0004.connect() as conn:
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_the_check_constraints_of_the_models_are_those_of_the_migrations(tmp_path: Path) -> None:
    """compare_metadata does not look at CHECK constraints: compare their names and texts here."""
    from sqlalchemy import CheckConstraint
    from sqlmodel import SQLModel

    engine = db.make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    db.upgrade(engine)
    for name, table in SQLModel.metadata.tables.items():
        declared = {(c.name, str(c.sqltext)) for c in table.constraints if isinstance(c, CheckConstraint)}
        reflected = {(c["name"], c["sqltext"]) for c in inspect(engine).get_check_constraints(name)}
        assert reflected == declared, name
    assert {t for t, _, _ in CHECKED} <= {
        n
        for n, t in SQLModel.metadata.tables.items()
        if any(isinstance(c, CheckConstraint) for c in t.constraints)
    }


def test_a_dangling_reference_found_by_foreign_key_check_rolls_the_whole_migration_back(at_0004) -> None:
    path = at_0004.url.database
    with sqlite3.connect(path) as raw:  # a plain connection: foreign keys off, so the row goes in
        raw.execute("INSERT INTO run_documents VALUES (999, 1)")
    before, indexes = _dump(at_0004), _indexes(at_0004)
    with pytest.raises(
        DatabaseError, match=r"refused and rolled back: 1 row\(s\) point at rows that do not exist"
    ):
        db.upgrade(at_0004)
    assert db.current_revision(at_0004) == "0004"
    assert _dump(at_0004) == before and _indexes(at_0004) == indexes and not any(_checks(at_0004).values())
    with at_0004.connect() as conn:
        names = conn.exec_driver_sql("SELECT name FROM sqlite_master").scalars().all()
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    assert not [n for n in names if n.startswith("_alembic_tmp")]


def test_the_revision_chain_read_from_the_files_is_alembics() -> None:
    """store/db reads the migration chain from the files (Alembic costs ~100 ms to import): the same chain."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(db.alembic_config())
    alembic_chain = [r.revision for r in reversed(list(script.walk_revisions()))]
    assert list(db.known_revisions()) == alembic_chain and db.head_revision() == script.get_current_head()


def test_status_read_through_core_sql_matches_the_orm(project) -> None:
    """`annotator status` reads through light Core stand-ins (store/overview.py) instead of the models: every
    figure it prints is what the ORM holds, on SQLite and PostgreSQL (datetimes, booleans, NULL splits)."""
    from sqlmodel import select

    from annotator.data.example import import_example
    from annotator.data.splits import make_split
    from annotator.services.status import project_status
    from annotator.store.models import Coder, Document, PromptVersion, Run, SplitEvent
    from annotator.store.retire import archive_run
    from tests.conftest import label_by_word, scripted_run

    import_example(project, n=40, raters=3, seed=1)
    make_split(project, test=0.25, seed=1, stratify_by_coder="critics")
    first = scripted_run(project, label_by_word({"bad": "negative"}))
    scripted_run(project, label_by_word({}), prompt="sentiment/few-shot.v1")
    archive_run(project, first.run_id)
    info = project_status(project)
    with project.transaction() as s:
        docs = s.exec(select(Document)).all()
        runs = s.exec(select(Run).order_by(Run.id)).all()
        coders = s.exec(select(Coder)).all()
        prompts = s.exec(select(PromptVersion).order_by(PromptVersion.id)).all()
        split = s.exec(select(SplitEvent).order_by(SplitEvent.id.desc())).first()  # type: ignore[union-attr]
    assert info.documents["total"] == len(docs) == 40
    assert info.documents["test"] == sum(d.split == "test" for d in docs) > 0
    assert [r["id"] for r in info.runs] == [r.id for r in runs if r.archived_at is None]
    assert info.archived_runs == 1
    live = next(r for r in runs if r.archived_at is None and r.kind == "llm")
    row = next(r for r in info.runs if r["id"] == live.id)
    assert row["started"] == live.started_at.isoformat(timespec="seconds") and row["items"] == live.n_items
    assert row["codebook"] == "sentiment@1" and row["status"] == live.status
    assert sorted(c["name"] for c in info.coders) == sorted(c.name for c in coders)
    assert [p["ref"] for p in info.prompts] == [p.ref for p in prompts]
    assert info.split is not None and split is not None
    assert info.split["at"] == split.created_at.isoformat(timespec="seconds")
    assert info.split["forced"] is False and info.split["stratify"] == split.stratify == "coder:critics"
