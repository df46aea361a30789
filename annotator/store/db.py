"""Engine, session and schema migrations.

SQLite is the embedded default (WAL, busy_timeout, foreign keys); any SQLAlchemy URL works. The schema is
owned by Alembic (``migrations/``): opening a database upgrades it to head, and a database stamped with a
revision this version of annotator does not know was written by a newer annotator and is refused.

A SQLite file that this process cannot write (the file, its -wal/-shm, or the folder SQLite creates them in)
is opened read-only (``make_engine(url)`` decides; ``read_only=True/False`` forces it). A read-only
connection creates no file: ``immutable=1`` when there is no -wal with changes to read, else ``mode=ro``
(which reads the -wal through the existing -shm). A plain ``mode=ro`` is not used alone because, in a
writable folder, it creates -wal and -shm files with the database's permissions, and a read-only -shm left
behind breaks every later writer even after ``chmod`` on the database. On a read-only open nothing is
written: a stored figure (a ``metrics`` row) is dropped, any other write is refused with a DatabaseError,
and a database that needs a migration is refused with what to do.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import sqlite3
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.exc import DatabaseError as SQLAlchemyDatabaseError

from annotator.errors import DatabaseError
from annotator.resources import migrations_dir

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlmodel import Session

SQLITE_BUSY_TIMEOUT_MS = 30_000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _read_only_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA query_only=ON")  # a second guard: SQLite itself refuses any write
    cursor.close()


_READ_ONLY: weakref.WeakSet[Engine] = weakref.WeakSet()
_DROPPED: weakref.WeakKeyDictionary[Engine, int] = weakref.WeakKeyDictionary()


def sqlite_path(url: str | Any) -> Path | None:
    """The file of a SQLite URL; None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or not parsed.database or parsed.database == ":memory:":
        return None
    if parsed.database.startswith("file:"):  # a URI filename (uri=true): not a plain path
        return None
    return Path(parsed.database)


def sidecars(path: Path) -> tuple[Path, Path]:
    """SQLite's write-ahead log and shared-memory index beside the database file."""
    return path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK)


def not_writable(path: Path) -> Path | None:
    """What keeps this process from writing the SQLite database at ``path`` (the file itself, its -wal or
    -shm, or the folder SQLite must create them in), or None when it can be written.

    Checked with os.access: the permissions, and read-only file systems (also for root)."""
    folder = path.parent
    if not folder.is_dir():  # not a permission matter: opening says the database cannot be opened there
        return None
    if path.exists() and not _writable(path):
        return path
    wal, shm = sidecars(path)
    for sidecar in (wal, shm):
        if sidecar.exists() and not _writable(sidecar):
            return sidecar
    if not (path.exists() and wal.exists() and shm.exists()) and not os.access(folder, os.W_OK | os.X_OK):
        return folder  # SQLite creates the database, its -wal and its -shm in the folder
    return None


def how_to_write(blocked: Path) -> str:
    """What to do about a file or folder that is not writable, for a one-line message."""
    kind = "folder" if blocked.is_dir() else "file"
    return (
        f"the {kind} {blocked} is not writable: make it writable (chmod u+w {shlex.quote(str(blocked))}), or "
        "copy the project folder somewhere writable and work there"
    )


def _read_only_creator(path: Path) -> Callable[[], sqlite3.Connection]:
    def connect() -> sqlite3.Connection:
        if not path.is_file():
            raise DatabaseError(
                f"the database {path} does not exist, and {how_to_write(not_writable(path) or path.parent)}"
            )
        wal, shm = sidecars(path)
        if wal.is_file() and wal.stat().st_size > 0:  # changes not yet merged into the file: read them
            if not shm.is_file():
                raise DatabaseError(
                    f"{wal} holds changes not yet merged into {path}, and reading them without write access "
                    f"needs {shm.name}, which is missing; {how_to_write(not_writable(path) or path)}, then run "
                    "`annotator status` once to merge them"
                )
            query = "mode=ro"
        else:  # no log to read: immutable reads the file alone and creates no -wal or -shm
            query = "immutable=1"
        uri = f"file:{quote(str(path.resolve()))}?{query}"
        return sqlite3.connect(uri, uri=True, check_same_thread=False)

    return connect


def make_engine(url: str, read_only: bool | None = None) -> Engine:
    """An engine for ``url``; SQLite gets its pragmas on every connection.

    ``read_only``: None opens a SQLite file read-only when this process cannot write it (see
    :func:`not_writable`), read-write otherwise; True or False forces it (other databases ignore it).
    """
    path = None
    with suppress(ArgumentError):  # a bad URL: create_engine below says so
        path = sqlite_path(url)
    if path is not None and read_only is None:
        read_only = not_writable(path) is not None
    read_only = bool(read_only and path is not None)
    try:
        args: dict[str, Any] = {}
        if url.startswith("sqlite"):
            # SQLite connections may be used by the run engine's writer thread (one at a time)
            args["connect_args"] = {"check_same_thread": False}
        if read_only:
            assert path is not None
            args = {"creator": _read_only_creator(path)}
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
    if read_only:
        event.listen(engine, "connect", _read_only_pragmas)
        _READ_ONLY.add(engine)
    elif engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def is_read_only(engine: Engine) -> bool:
    """Whether ``engine`` was opened read-only (nothing will be written through it)."""
    return engine in _READ_ONLY


def dropped_writes(engine: Engine) -> int:
    """How many stored figures (metrics rows) a read-only engine left unstored."""
    return _DROPPED.get(engine, 0)


def alembic_config(engine: Engine | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    # Alembic's options go through configparser, where "%" starts an interpolation: a project folder named
    # "100%" (in the path or the database URL) must not break opening it
    cfg.set_main_option("script_location", str(migrations_dir()).replace("%", "%%"))
    if engine is not None:
        url = engine.url.render_as_string(hide_password=False)
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["engine"] = engine
    return cfg


_REVISION = re.compile(r'^(down_revision|revision)\s*(?::[^=]*)?=\s*["\']?([^"\'\s]+)["\']?\s*$', re.M)


@lru_cache(maxsize=1)
def known_revisions() -> tuple[str, ...]:
    """The schema revisions in ``migrations/versions``, oldest first, read from the files' ``revision`` and
    ``down_revision`` lines (the chain is linear).

    Why not Alembic's ScriptDirectory here: importing Alembic (and Mako, which it loads) costs about 100 ms,
    a sixth of `annotator status` (0.58 s, measured), on every command, to learn that the database is at head.
    Alembic is imported only when a migration runs; tests/test_store.py checks that this chain is Alembic's."""
    parent: dict[str, str | None] = {}
    for path in sorted((migrations_dir() / "versions").glob("*.py")):
        found = dict((k, v) for k, v in _REVISION.findall(path.read_text(encoding="utf-8")))
        if "revision" in found:
            down = found.get("down_revision")
            parent[found["revision"]] = None if down in (None, "None") else down
    chain: list[str] = []
    children = {down: rev for rev, down in parent.items()}
    at = children.get(None)
    while at is not None:
        chain.append(at)
        at = children.get(at)
    assert chain and len(chain) == len(parent), "migrations/ holds no linear chain of revisions"
    return tuple(chain)


def head_revision() -> str:
    return known_revisions()[-1]


def current_revision(engine: Engine) -> str | None:
    """The database's schema revision (None: not stamped yet)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        found = [r[0] for r in conn.exec_driver_sql("SELECT version_num FROM alembic_version")]
    if len(found) > 1:
        raise DatabaseError(
            f"{describe(engine)} has several schema revisions ({', '.join(found)}); repair it"
        )
    return found[0] if found else None


def describe(engine: Engine) -> str:
    """The database's location for messages, without any password."""
    url = make_url(engine.url)
    if url.drivername.startswith("sqlite"):
        return url.database or ":memory:"
    return url.render_as_string(hide_password=True)


def empty_sqlite_file(engine: Engine) -> Path | None:
    """The engine's SQLite file when it exists and has 0 bytes; None otherwise (or for other databases)."""
    path = sqlite_path(engine.url)
    return path if path is not None and path.is_file() and path.stat().st_size == 0 else None


def check_known(engine: Engine, revision: str | None) -> None:
    if revision is None:
        return
    if revision not in known_revisions():
        raise DatabaseError(
            f"{describe(engine)} was written by a newer version of annotator (schema revision {revision}, "
            f"this version knows up to {head_revision()}); upgrade annotator to open it"
        ) from None


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    check_known(engine, current_revision(engine))
    logging.getLogger("alembic").setLevel(logging.WARNING)
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command
    from alembic.util.exc import CommandError

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
        if is_read_only(engine):
            raise DatabaseError(
                f"{describe(engine)} has schema revision {revision or 'none'} and this annotator needs "
                f"{head_revision()}: upgrading it writes to it, but {_blocked_text(engine)}; then run "
                "`annotator db upgrade`"
            )
        upgrade(engine)
    except OperationalError as exc:
        raise DatabaseError(f"cannot open the database {describe(engine)}: {exc.orig}") from None
    except SQLAlchemyDatabaseError as exc:
        raise DatabaseError(f"{describe(engine)} is not a database annotator can use ({exc.orig})") from None


def _blocked_text(engine: Engine) -> str:
    path = sqlite_path(engine.url)
    blocked = not_writable(path) if path is not None else None
    return how_to_write(blocked) if blocked is not None else f"{describe(engine)} is open read-only"


def _keep_read_only(session: Session, _context: Any, _instances: Any) -> None:
    """Before a flush on a read-only engine: drop new stored figures (a metrics row records a result the
    command prints anyway), refuse any other write before SQL is sent."""
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    for obj in list(session.new):
        if getattr(obj, "__tablename__", None) == "metrics":
            session.expunge(obj)
            _DROPPED[engine] = _DROPPED.get(engine, 0) + 1
    changed = [obj for obj in session.dirty if session.is_modified(obj)]
    if session.new or changed or session.deleted:
        raise DatabaseError(f"this command writes to the database, but {_blocked_text(engine)}")


def read_only_error(exc: BaseException) -> DatabaseError | None:
    """SQLite's "attempt to write a readonly database" as a one-line DatabaseError (None for anything else)."""
    if isinstance(exc, OperationalError | sqlite3.OperationalError) and "readonly database" in str(exc):
        return DatabaseError(
            "the database is read-only and this command writes to it: make the database file, its folder "
            "and any annotator.db-wal / -shm beside it writable (chmod u+w), or copy the project folder "
            "somewhere writable"
        )
    return None


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One session, one transaction: committed when the block ends, rolled back on any error.

    On a read-only engine nothing is written (see the module docstring)."""
    from sqlmodel import Session

    with Session(engine, expire_on_commit=False) as session:
        if is_read_only(engine):
            event.listen(session, "before_flush", _keep_read_only)
        try:
            yield session
            session.commit()
        except OperationalError as exc:
            session.rollback()
            translated = read_only_error(exc)
            if translated is not None:
                raise translated from None
            raise
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
