"""The project database as a user asks about it: its schema revision, migrating it up or down, and whether a
command just ran on it read-only (and so left figures unstored)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from annotator.errors import DatabaseError
from annotator.project import Project
from annotator.store import db

__all__ = ["Migrated", "Revision", "current", "downgrade", "read_only_error", "read_only_note", "upgrade"]


@dataclass(frozen=True)
class Revision:
    database: str  # where it is, without any password
    current: str | None  # None: an empty database (no schema yet)
    head: str  # the newest revision this annotator knows


@dataclass(frozen=True)
class Migrated:
    database: str
    before: str | None
    after: str | None


@contextmanager
def _engine(project: Project) -> Iterator[Engine]:
    """An engine of its own on the project's database: a migration must not go through the project's engine,
    which brings the schema to head when it opens."""
    engine = db.make_engine(project.database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def current(project: Project) -> Revision:
    """The database's schema revision and the newest one this annotator knows (a newer one is refused)."""
    with _engine(project) as engine:
        revision = db.current_revision(engine)
        db.check_known(engine, revision)
        return Revision(db.describe(engine), revision, db.head_revision())


def upgrade(project: Project) -> Migrated:
    """Migrate the database to the current schema (done anyway whenever a project opens)."""
    with _engine(project) as engine:
        before = db.current_revision(engine)
        db.upgrade(engine)
        return Migrated(db.describe(engine), before, db.current_revision(engine))


def downgrade(project: Project, revision: str) -> Migrated:
    """Migrate the schema back to ``revision`` (for developers; data in dropped tables is lost)."""
    with _engine(project) as engine:
        before = db.current_revision(engine)
        db.downgrade(engine, revision)
        return Migrated(db.describe(engine), before, db.current_revision(engine))


def read_only_note(project: Project | None) -> str | None:
    """After a command: the note to show when ``project``'s database was open read-only and figures computed
    in the command were not stored; None otherwise. Never opens the database."""
    engine = project.__dict__.get("engine") if project is not None else None
    if engine is None or not db.is_read_only(engine) or not db.dropped_writes(engine):
        return None
    return f"note: {db.describe(engine)} is open read-only, so these figures were not stored in it"


def read_only_error(exc: BaseException) -> DatabaseError | None:
    """A one-line error for SQLite refusing a write on a read-only database; None for any other exception."""
    return db.read_only_error(exc)
