"""CHECK constraints on the closed vocabularies: documents.split, coders.kind, runs.kind, runs.status,
annotations.status and splits.scope

Existing rows are checked first: a value outside a vocabulary stops the upgrade with a one-line message
naming the table, the column and the value, before anything is changed. On SQLite a constraint is added or
dropped by rebuilding the table (batch mode, recreate); migrations/env.py runs every migration with foreign
keys off, so that dropping the old ``runs``, ``documents`` or ``coders`` deletes nothing through ON DELETE
CASCADE, and refuses the migration if PRAGMA foreign_key_check then reports anything. Each rebuild also
checks that foreign keys are off and that the table holds as many rows after as before. PostgreSQL: ALTER
TABLE ADD / DROP CONSTRAINT.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from annotator.errors import DatabaseError

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# the vocabularies as of this revision (a later change to annotator.store.models needs its own migration)
KINDS = ("human", "llm", "baseline", "gold")
CHECKS: dict[str, dict[str, tuple[str, ...]]] = {
    "documents": {"split": ("dev", "test")},
    "coders": {"kind": KINDS},
    "runs": {"kind": KINDS, "status": ("running", "done", "interrupted", "failed")},
    "annotations": {"status": ("ok", "invalid", "error")},
    "splits": {"scope": ("all", "new")},
}


def _name(table: str, column: str) -> str:
    return f"ck_{table}_{column}"


def _condition(column: str, values: tuple[str, ...]) -> str:
    # the same text as annotator.store.models.one_of (tests/test_store.py compares them)
    listed = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"{column} IN ({listed})"


def _refuse_violations(conn: sa.Connection) -> None:
    for table, columns in CHECKS.items():
        for column, values in columns.items():
            t = sa.table(table, sa.column(column))
            c = t.c[column]
            query = (
                sa.select(c, sa.func.count())
                .where(c.is_not(None), c.not_in(values))
                .group_by(c)
                .order_by(c)
                .limit(1)
            )
            found = conn.execute(query).first()
            if found is not None:
                value, n = found
                raise DatabaseError(
                    f"cannot upgrade the database to schema revision {revision}: {table}.{column} holds "
                    f"{value!r} in {n} row(s), which is not one of {', '.join(values)}; nothing was changed"
                )


def _count(conn: sa.Connection, table: str) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(sa.table(table))).scalar_one())


def _rebuild_sqlite(table: str, add: bool) -> None:
    """Add (or drop) the table's CHECK constraints by rebuilding it, keeping every row."""
    conn = op.get_bind()
    if conn.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise DatabaseError(
            f"refusing to rebuild {table} with SQLite foreign keys on (dropping the old table would delete "
            "the rows that point at it); run migrations through annotator (`annotator db upgrade`)"
        )
    before = _count(conn, table)
    with op.batch_alter_table(table, recreate="always") as batch_op:
        for column, values in CHECKS[table].items():
            if add:
                batch_op.create_check_constraint(_name(table, column), _condition(column, values))
            else:
                batch_op.drop_constraint(_name(table, column), type_="check")
    after = _count(conn, table)
    if after != before:
        raise DatabaseError(
            f"rebuilding {table} kept {after} of its {before} rows; the migration was rolled back"
        )


def upgrade() -> None:
    conn = op.get_bind()
    _refuse_violations(conn)
    for table, columns in CHECKS.items():
        if conn.dialect.name == "sqlite":
            _rebuild_sqlite(table, add=True)
        else:
            for column, values in columns.items():
                op.create_check_constraint(_name(table, column), table, _condition(column, values))


def downgrade() -> None:
    conn = op.get_bind()
    for table, columns in CHECKS.items():
        if conn.dialect.name == "sqlite":
            _rebuild_sqlite(table, add=False)
        else:
            for column in columns:
                op.drop_constraint(_name(table, column), table, type_="check")
