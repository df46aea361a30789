"""Alembic environment. annotator runs migrations in-process (annotator.store.db), handing the engine over
in ``config.attributes``; ``alembic`` on the command line works too with ``-x url=...``.

On SQLite every migration runs with foreign keys off, in one explicit transaction. A migration that adds or
drops a constraint rebuilds the table (create a copy, copy the rows, drop the old table, rename the copy: the
"12-step generalized ALTER TABLE procedure" of SQLite's documentation), and dropping ``runs`` while foreign keys
are on deletes, through ON DELETE CASCADE, every annotation, run_documents and metrics row that points at it.
``PRAGMA foreign_keys`` only takes effect outside a transaction, so it is turned off before the transaction
begins; before the commit, ``PRAGMA foreign_key_check`` must report nothing (otherwise the whole migration is
rolled back and refused); they are turned on again after. The explicit BEGIN makes the DDL transactional too
(Python's sqlite3 would otherwise run CREATE/DROP outside a transaction until the first INSERT), so a refused
migration leaves the database as it was.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import annotator.store.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from annotator.errors import DatabaseError
from annotator.store.db import make_engine

config = context.config
target_metadata = SQLModel.metadata


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _sqlite_foreign_keys(connection: Connection, on: bool) -> None:
    """Set PRAGMA foreign_keys outside any transaction (inside one, SQLite ignores it) and check it took."""
    connection.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    state = connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
    connection.commit()  # ends SQLAlchemy's autobegun transaction; sqlite3 itself began none for a PRAGMA
    if bool(state) != on:
        raise DatabaseError(
            f"cannot turn SQLite foreign keys {'on' if on else 'off'} for the migration (a transaction is "
            "open on the connection); nothing was changed"
        )


def _foreign_key_problems(connection: Connection) -> str | None:
    rows = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if not rows:
        return None
    table, rowid, parent, _ = rows[0]
    return (
        f"{len(rows)} row(s) point at rows that do not exist (e.g. {table} row {rowid} at a missing {parent} "
        "row)"
    )


def _migrate_sqlite(connection: Connection) -> None:
    _sqlite_foreign_keys(connection, on=False)
    try:
        with connection.begin():
            connection.exec_driver_sql("BEGIN")  # see the module docstring: DDL inside the transaction too
            _migrate(connection)
            problems = _foreign_key_problems(connection)
            if problems is not None:
                raise DatabaseError(f"the migration was refused and rolled back: {problems}")
    finally:
        _sqlite_foreign_keys(connection, on=True)


def run_migrations() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
            "sqlalchemy.url"
        )
        engine = make_engine(url)
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            _migrate_sqlite(connection)
        else:
            with connection.begin():
                _migrate(connection)


if context.is_offline_mode():
    raise SystemExit("annotator migrations run online only")
run_migrations()
