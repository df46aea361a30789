"""Alembic environment. annotator runs migrations in-process (annotator.store.db), handing the engine over
in ``config.attributes``; ``alembic`` on the command line works too with ``-x url=...``."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import annotator.store.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from annotator.store.db import make_engine

config = context.config
target_metadata = SQLModel.metadata


def run_migrations() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
            "sqlalchemy.url"
        )
        engine = make_engine(url)
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("annotator migrations run online only")
run_migrations()
