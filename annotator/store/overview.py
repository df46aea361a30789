"""The queries behind `annotator status`, in SQLAlchemy Core over light table stand-ins.

Why not the ORM models here: importing SQLModel and the models costs about 0.15 s (measured with
``python -X importtime``), a third of what `annotator status` takes end to end, for six SELECTs. The stand-ins
name only the columns read here; tests/test_results.py compares every figure with what the models hold.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, case, column, func, select, table
from sqlalchemy.engine import Connection

from annotator.store.times import as_utc


def _times(row: dict[str, Any], *names: str) -> dict[str, Any]:
    return {**row, **{n: as_utc(row[n]) for n in names}}


_documents = table("documents", column("id"), column("split"))
_coders = table("coders", column("id"), column("name"), column("kind"))
_runs = table(
    "runs",
    column("id"),
    column("coder_id"),
    column("codebook_id"),
    column("kind"),
    column("model"),
    column("split"),
    column("status"),
    column("n_items"),
    column("n_invalid"),
    column("n_error"),
    column("started_at", DateTime()),
    column("archived_at", DateTime()),
)
_annotations = table("annotations", column("id"), column("run_id"), column("document_id"))
_codebooks = table("codebooks", column("id"), column("name"), column("version"))
_prompts = table(
    "prompts",
    column("id"),
    column("codebook"),
    column("name"),
    column("version"),
    column("sha256"),
    column("frozen_at", DateTime()),
)
_splits = table(
    "splits",
    column("id"),
    column("test_fraction"),
    column("seed"),
    column("stratify"),
    column("forced", Boolean()),
    column("created_at", DateTime()),
)


def split_counts(conn: Connection) -> dict[str | None, int]:
    """Documents per split (None: in no split yet)."""
    d = _documents.c
    return {s: int(n) for s, n in conn.execute(select(d.split, func.count()).group_by(d.split))}


def coder_counts(conn: Connection) -> list[tuple[str, str, int, int, int, int]]:
    """Each coder: name, kind, runs, codes, codes on dev documents, on test documents (by kind, then age)."""
    c, r, a, d = _coders.c, _runs.c, _annotations.c, _documents.c
    query = (
        select(
            c.name,
            c.kind,
            func.count(func.distinct(r.id)),
            func.count(a.id),
            func.count(case((d.split == "dev", 1))),
            func.count(case((d.split == "test", 1))),
        )
        .select_from(_coders)
        .outerjoin(_runs, r.coder_id == c.id)
        .outerjoin(_annotations, a.run_id == r.id)
        .outerjoin(_documents, d.id == a.document_id)
        .group_by(c.id, c.name, c.kind)
        .order_by(c.kind, c.id)
    )
    return [
        (n, k, int(runs), int(codes), int(dev), int(test))
        for n, k, runs, codes, dev, test in conn.execute(query)
    ]


def runs(conn: Connection) -> list[dict[str, Any]]:
    """Every run with its coder's name and its codebook's name and version, in id order."""
    r, c, cb = _runs.c, _coders.c, _codebooks.c
    query = (
        select(*r, c.name.label("coder"), cb.name.label("codebook"), cb.version.label("codebook_version"))
        .select_from(_runs)
        .join(_coders, c.id == r.coder_id)
        .outerjoin(_codebooks, cb.id == r.codebook_id)
        .order_by(r.id)
    )
    return [_times(dict(row._mapping), "started_at", "archived_at") for row in conn.execute(query)]


def prompts(conn: Connection) -> list[tuple[str, str, datetime | None]]:
    """Each registered prompt version: its ref (codebook/name.vN), sha256, frozen time."""
    p = _prompts.c
    found = conn.execute(select(p.codebook, p.name, p.version, p.sha256, p.frozen_at).order_by(p.id))
    return [(f"{cb}/{name}.v{v}", sha, as_utc(frozen)) for cb, name, v, sha, frozen in found]


def last_split(conn: Connection) -> dict[str, Any] | None:
    """The latest split assignment's parameters."""
    s = _splits.c
    row = conn.execute(select(_splits).order_by(s.id.desc()).limit(1)).first()
    return None if row is None else _times(dict(row._mapping), "created_at")
