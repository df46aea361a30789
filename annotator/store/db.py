"""Engine, session and schema migrations.

SQLite is the embedded default (WAL, busy_timeout, foreign keys); any SQLAlchemy URL works. The schema is
owned by Alembic (``migrations/``): opening a database upgrades it to head, and a database stamped with a
revision this version of annotator does not know was written by a newer annotator and is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.exc import DatabaseError as SQLAlchemyDatabaseError
from sqlmodel import Session, create_engine

from annotator.errors import DatabaseError
from annotator.resources import migrations_dir

SQLITE_BUSY_TIMEOUT_MS = 30_000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets its pragmas on every connection."""
    try:
        # SQLite connections may be used by the run engine's writer thread (one at a time)
        args = {"connect_args": {"check_same_thread": False}} if url.startswith("sqlite") else {}
        engine = create_engine(url, **args)
    except ArgumentError:
        raise DatabaseError(
            f"database URL {url!r} is not a SQLAlchemy URL; write e.g. sqlite:///annotator.db or "
            "postgresql+psycopg://user@host/db (in ANNOTATOR_DB or annotator.toml)"
        ) from None
    except ImportError as exc:
        raise DatabaseError(
            f"the database driver for {make_url(url).drivername} is not installed ({exc})"
        ) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config()
    # Alembic's options go through configparser, where "%" starts an interpolation: a project folder named
    # "100%" (in the path or the database URL) must not break opening it
    cfg.set_main_option("script_location", str(migrations_dir()).replace("%", "%%"))
    if engine is not None:
        url = engine.url.render_as_string(hide_password=False)
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["engine"] = engine
    return cfg


@lru_cache(maxsize=1)
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = _script().get_current_head()
    assert head is not None, "migrations/ has no revisions"
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def describe(engine: Engine) -> str:
    """The database's location for messages, without any password."""
    url = make_url(engine.url)
    if url.drivername.startswith("sqlite"):
        return url.database or ":memory:"
    return url.render_as_string(hide_password=True)


def empty_sqlite_file(engine: Engine) -> Path | None:
    """The engine's SQLite file when it exists and has 0 bytes; None otherwise (or for other databases)."""
    url = make_url(engine.url)
    if not url.drivername.startswith("sqlite") or not url.database or url.database == ":memory:":
        return None
    path = Path(url.database)
    return path if path.is_file() and path.stat().st_size == 0 else None


def check_known(engine: Engine, revision: str | None) -> None:
    if revision is None:
        return
    try:
        _script().get_revision(revision)
    except Exception:
        raise DatabaseError(
            f"{describe(engine)} was written by a newer version of annotator (schema revision {revision}, "
            f"this version knows up to {head_revision()}); upgrade annotator to open it"
        ) from None


def upgrade(engine: Engine, revision: str = "head") -> None:
    check_known(engine, current_revision(engine))
    logging.getLogger("alembic").setLevel(logging.WARNING)
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    check_known(engine, current_revision(engine))
    try:
        command.downgrade(alembic_config(engine), revision)
    except CommandError as exc:
        raise DatabaseError(f"cannot downgrade to {revision!r}: {exc}") from None


def ensure_schema(engine: Engine) -> None:
    """Bring the database to head (cheap when it is there already). An empty (0-byte) SQLite file is refused:
    SQLite would silently take it as a new, empty database, and a project whose file was truncated would
    look like a new project."""
    empty = empty_sqlite_file(engine)
    if empty is not None:
        raise DatabaseError(
            f"{empty} is empty (0 bytes), so it holds no project: if it should, restore it from a backup; to "
            "start a new project here, delete it and run `annotator init`"
        )
    try:
        revision = current_revision(engine)
        if revision == head_revision():
            return
        check_known(engine, revision)
        upgrade(engine)
    except OperationalError as exc:
        raise DatabaseError(f"cannot open the database {describe(engine)}: {exc.orig}") from None
    except SQLAlchemyDatabaseError as exc:
        raise DatabaseError(f"{describe(engine)} is not a database annotator can use ({exc.orig})") from None


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One session, one transaction: committed when the block ends, rolled back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def bulk_insert(session: Session, model: Any, rows: list[dict[str, Any]], chunk: int = 5_000) -> None:
    """Insert many rows through Core executemany (the ORM's bulk path costs ~5x more per row)."""
    table = model.__table__
    connection = session.connection()
    for start in range(0, len(rows), chunk):
        connection.execute(table.insert(), rows[start : start + chunk])


def _dialect_insert(session: Session, table: Any) -> Any:
    name = session.get_bind().dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table)
    if name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    raise DatabaseError(f"the {name} database is not supported; use SQLite or PostgreSQL")


def insert_ignore(session: Session, model: Any, rows: list[dict[str, Any]], keys: list[str]) -> None:
    """Insert rows, skipping those whose ``keys`` already exist (answers stored by an earlier process)."""
    if not rows:
        return
    stmt = _dialect_insert(session, model.__table__).on_conflict_do_nothing(index_elements=keys)
    session.connection().execute(stmt, rows)


def upsert(session: Session, model: Any, rows: list[dict[str, Any]], keys: list[str]) -> None:
    """Insert rows, replacing existing rows with the same ``keys`` (an error replaced by an answer)."""
    if not rows:
        return
    table = model.__table__
    stmt = _dialect_insert(session, table)
    updates = {c: stmt.excluded[c] for c in rows[0] if c not in keys and c != "id"}
    session.connection().execute(stmt.on_conflict_do_update(index_elements=keys, set_=updates), rows)
