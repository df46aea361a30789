"""A project is a folder with ``annotator.toml``, ``codebooks/``, ``prompts/`` and (by default) ``annotator.db``.

Commands find it from the current folder upwards, or from ``--project DIR``. The database URL comes from
``ANNOTATOR_DB``, else the toml, else ``sqlite:///annotator.db`` relative to the project folder; any
SQLAlchemy URL works.

A SQLite database this process cannot write opens read-only (see annotator.store.db): commands that only read
work on it, and a command that writes calls :meth:`Project.check_writable` first, which refuses it in one
line before anything is written.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError

from annotator.config import DEFAULT_MODEL, ProjectConfig, parse_config
from annotator.errors import DatabaseError, ProjectError, arg
from annotator.resources import example_codebooks_dir, example_prompts_dir
from annotator.store import db

if TYPE_CHECKING:
    from sqlmodel import Session

CONFIG_FILE = "annotator.toml"
DEFAULT_DB_URL = "sqlite:///annotator.db"
DB_ENV = "ANNOTATOR_DB"

_TOML_TEMPLATE = """\
# annotator project settings
[project]
name = "{name}"
# the model used when `annotator run` is given no --model ("provider/model", e.g. openai/gpt-4o-mini)
default_model = "{model}"

[database]
# any SQLAlchemy URL; relative SQLite paths are relative to this folder. ANNOTATOR_DB overrides it.
url = "{url}"
"""


@dataclass
class Project:
    root: Path
    name: str
    database_url: str
    default_model: str = DEFAULT_MODEL
    settings: dict[str, Any] = field(default_factory=dict)  # annotator.toml as parsed (checked: ``config``)
    config: ProjectConfig = field(default_factory=ProjectConfig)

    @property
    def codebooks_dir(self) -> Path:
        return self.root / "codebooks"

    @property
    def prompts_dir(self) -> Path:
        return self.root / "prompts"

    @cached_property
    def engine(self) -> Engine:
        """The project's database, migrated to the current schema on first use; opened read-only when this
        process cannot write it (a read-only open that needs a migration is refused)."""
        engine = db.make_engine(self.database_url)
        db.ensure_schema(engine)
        return engine

    @property
    def read_only(self) -> bool:
        """Whether the database is open read-only (nothing this process does is written)."""
        return db.is_read_only(self.engine)

    def check_writable(self) -> None:
        """Refuse (DatabaseError, one line) when the SQLite database, its -wal/-shm or its folder cannot be
        written: a command that writes calls this before it does anything."""
        path = db.sqlite_path(self.database_url)
        blocked = db.not_writable(path) if path is not None else None
        if blocked is not None:
            raise DatabaseError(
                f"this command writes to the database, but {db.how_to_write(blocked)}; commands that only "
                "read (status, runs, agreement, validate, compare, export, report) work as it is"
            )

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One transaction for one command: all of it is written, or none of it."""
        with db.transaction(self.engine) as session:
            yield session

    def codebook_path(self, name: str) -> Path:
        """codebooks/NAME.yaml (or NAME.yml when only that exists)."""
        path = self.codebooks_dir / f"{name}.yaml"
        alternative = path.with_suffix(".yml")
        return alternative if not path.exists() and alternative.exists() else path


def _resolve_url(url: str, root: Path) -> str:
    """Make a relative SQLite path relative to the project folder, not to the current directory."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ProjectError(
            f"database URL {url!r} is not a SQLAlchemy URL; write e.g. sqlite:///annotator.db or "
            "postgresql+psycopg://user@host/db (in ANNOTATOR_DB or annotator.toml)"
        ) from None
    if parsed.drivername.startswith("sqlite") and parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database).expanduser()
        if not path.is_absolute():
            path = root / path
        return parsed.set(database=str(path)).render_as_string(hide_password=False)
    return url


def load_project(root: Path) -> Project:
    config_path = root / CONFIG_FILE
    try:
        text = config_path.read_text(encoding="utf-8")
        config = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProjectError(f"{config_path}: not valid TOML ({exc}); fix the file") from None
    except UnicodeDecodeError:
        raise ProjectError(f"{config_path}: not UTF-8 text; save it as UTF-8") from None
    checked = parse_config(config, text, config_path)
    url = os.environ.get(DB_ENV) or checked.database.url or DEFAULT_DB_URL
    return Project(
        root=root,
        name=checked.project.name or root.name,
        database_url=_resolve_url(url, root),
        default_model=checked.project.default_model,
        settings=config,
        config=checked,
    )


def find_project(explicit: Path | None = None, start: Path | None = None) -> Project:
    """The project at ``explicit``, or the nearest folder at or above ``start`` holding annotator.toml."""
    if explicit is not None:
        root = explicit.expanduser().resolve()
        if not (root / CONFIG_FILE).is_file():
            raise ProjectError(
                f"no annotator project in {root} (no {CONFIG_FILE}); create one with `annotator init {explicit}`"
            )
        return load_project(root)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return load_project(folder)
    raise ProjectError(
        f"no annotator project in {here} or any folder above it; create one with `annotator init DIR` "
        f"and cd into it, or pass {arg('explicit', 'DIR')}"
    )


EXAMPLES = ("sentiment", "stance")


def copy_example(name: str, root: Path, overwrite: bool = False) -> list[Path]:
    """Copy a shipped codebook and its prompt templates into a project; returns the files written."""
    if name not in EXAMPLES:
        raise ProjectError(f"unknown example {name!r}; choose one of: {', '.join(EXAMPLES)}")
    written: list[Path] = []
    pairs = [(example_codebooks_dir() / f"{name}.yaml", root / "codebooks" / f"{name}.yaml")]
    for src in sorted((example_prompts_dir() / name).glob("*.jinja")):
        pairs.append((src, root / "prompts" / name / src.name))
    for src, dst in pairs:
        if dst.exists() and not overwrite:
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        written.append(dst)
    return written


def init_project(
    folder: Path, name: str | None = None, example: str | None = None, database_url: str | None = None
) -> Project:
    """Create a project folder (refusing one that already has annotator.toml) and migrate its database."""
    root = folder.expanduser().resolve()
    if (root / CONFIG_FILE).exists():
        raise ProjectError(f"{root} is already an annotator project ({CONFIG_FILE} exists)")
    if root.exists() and not root.is_dir():
        raise ProjectError(f"{root} exists and is not a folder; choose another path")
    if example is not None and example not in EXAMPLES:
        raise ProjectError(f"unknown example {example!r}; choose one of: {', '.join(EXAMPLES)}")
    project_name = name or root.name
    if not re.fullmatch(r"[\w .-]+", project_name):
        raise ProjectError(f"project name {project_name!r}: use letters, digits, spaces, '.', '-' or '_'")
    created = not root.exists()
    before = set(root.rglob("*")) if not created else set()
    try:
        for sub in ("codebooks", "prompts"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / CONFIG_FILE).write_text(
            _TOML_TEMPLATE.format(name=project_name, model=DEFAULT_MODEL, url=database_url or DEFAULT_DB_URL),
            encoding="utf-8",
        )
        if example:
            copy_example(example, root)
        project = load_project(root)
        empty = db.empty_sqlite_file(db.make_engine(project.database_url))
        if empty is not None:  # init is the command that makes a new database: an empty file becomes one
            empty.unlink()
        _ = project.engine  # create and migrate the database now
    except BaseException as exc:
        if created:
            shutil.rmtree(root, ignore_errors=True)
        else:  # leave the folder as it was: remove only what this call created
            for path in sorted(set(root.rglob("*")) - before, key=lambda p: len(p.parts), reverse=True):
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise ProjectError(
                f"cannot create the project in {root}: creating {exc.filename or root} failed "
                f"({exc.strerror}); choose a folder you can write to"
            ) from None
        raise
    return project
