"""Developer tool: autogenerate a migration from the models (``python -m annotator.store.revision MSG``)."""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path

from alembic import command

from annotator.store.db import alembic_config, make_engine, upgrade


def main(message: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'scratch.db'}")
        with contextlib.suppress(Exception):  # no revisions yet
            upgrade(engine)
        command.revision(alembic_config(engine), message=message, autogenerate=True)


if __name__ == "__main__":
    main(" ".join(sys.argv[1:]) or "schema change")
