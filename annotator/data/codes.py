"""Human codes: import them once, with every problem named by file and line, as annotations of one import run
per coder and codebook version, so that humans, LLMs and baselines are read the same way.

Codes are never overwritten: a code that differs from the one stored for the same coder and document is
refused (a revision is imported under a new coder name). Documents are imported by `annotator.data.corpus`,
which re-exports these names.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from annotator.codebook import Codebook
from annotator.data.tables import cell, list_problems, read_table
from annotator.errors import InputError, arg
from annotator.project import Project
from annotator.store.db import bulk_insert
from annotator.store.models import CODER_KINDS, Annotation, CodebookVersion, Coder, Document, Run, utcnow
from annotator.store.registry import project_codebook, register_codebook


@dataclass
class CodesImported:
    source: str
    coders: dict[str, int]  # coder -> codes added
    unchanged: int
    blank: int
    codebook: str


def _check_unique(keys: list[str], wheres: list[str], what: str) -> None:
    counts = Counter(keys)
    dupes = [k for k, n in counts.items() if n > 1]
    if dupes:
        first = {k: [w for kk, w in zip(keys, wheres, strict=True) if kk == k][:2] for k in dupes[:3]}
        shown = "; ".join(f"{k!r} at {' and '.join(ws)}" for k, ws in first.items())
        raise InputError(
            f"duplicate {what} in the file: {shown} ({len(dupes)} ids in all); each id must be unique"
        )


@dataclass
class NewCode:
    key: str  # document id
    label: str  # as written in the file
    raw: str | None
    where: str


def normalise_labels(codebook: Codebook, codes: list[NewCode]) -> list[str]:
    """Each code in the codebook's spelling; any unknown label stops everything, all of them listed."""
    labels: list[str] = []
    unknown: Counter[str] = Counter()
    first_seen: dict[str, str] = {}
    for c in codes:
        label = codebook.normalize_label(c.label)
        if label is None:
            unknown[c.label] += 1
            first_seen.setdefault(c.label, c.where)
        labels.append(label or "")
    if unknown:
        shown = [f"{v!r} ({n}x, first at {first_seen[v]})" for v, n in unknown.most_common()]
        raise InputError(
            f"labels not in codebook {codebook.ref}: {list_problems(shown)}; allowed: "
            f"{', '.join(codebook.allowed_labels)}; fix the file or add the label to the codebook (new version)"
        )
    return labels


def document_ids(session: Session) -> dict[str, int]:
    return dict(session.execute(select(Document.doc_key, Document.id)).all())


def get_or_create_coder(session: Session, name: str, kind: str) -> Coder:
    if kind not in CODER_KINDS:
        raise InputError(f"coder kind {kind!r} is not one of {', '.join(CODER_KINDS)}")
    coder = session.execute(select(Coder).where(col(Coder.name) == name)).scalar_one_or_none()
    if coder is None:
        coder = Coder(name=name, kind=kind)
        session.add(coder)
        session.flush()
    elif coder.kind != kind:
        raise InputError(
            f"coder {name!r} already exists as a {coder.kind} coder, not {kind}; use another name"
        )
    return coder


def _import_run(session: Session, coder: Coder, codebook_row: CodebookVersion) -> Run:
    run = session.execute(
        select(Run).where(
            col(Run.coder_id) == coder.id,
            col(Run.codebook_id) == codebook_row.id,
            col(Run.kind) == coder.kind,
        )
    ).scalar_one_or_none()
    if run is None:
        assert coder.id is not None and codebook_row.id is not None
        run = Run(
            coder_id=coder.id,
            kind=coder.kind,
            codebook_id=codebook_row.id,
            status="done",
            params={"sources": []},
            finished_at=utcnow(),
        )
        session.add(run)
        session.flush()
    return run


def add_codes(
    session: Session,
    codebook: Codebook,
    codebook_row: CodebookVersion,
    coder_name: str,
    kind: str,
    codes: list[NewCode],
    source: dict[str, Any],
    doc_ids: dict[str, int] | None = None,
) -> tuple[int, int]:
    """Store one coder's codes (all checked first, nothing written on any problem). Returns (added, unchanged).

    ``doc_ids`` (document key -> row id) may be passed by callers adding many coders at once.
    """
    _check_unique([c.key for c in codes], [c.where for c in codes], f"document ids for coder {coder_name!r}")
    if doc_ids is None:
        doc_ids = document_ids(session)
    missing = [f"{c.key!r} ({c.where})" for c in codes if c.key not in doc_ids]
    if missing:
        raise InputError(
            f"codes for documents that are not imported: {list_problems(missing)}; import the documents first "
            "(`annotator import docs`) or fix the ids"
        )
    labels = normalise_labels(codebook, codes)
    coder = get_or_create_coder(session, coder_name, kind)
    run = _import_run(session, coder, codebook_row)
    existing = dict(
        session.execute(
            select(Annotation.document_id, Annotation.label).where(col(Annotation.run_id) == run.id)
        ).all()
    )
    now, rows, unchanged, conflicts = utcnow(), [], 0, []
    for c, label in zip(codes, labels, strict=True):
        doc_id = doc_ids[c.key]
        if doc_id in existing:
            if existing[doc_id] == label:
                unchanged += 1
            else:
                conflicts.append(f"{c.key!r} ({c.where}: {label}, stored: {existing[doc_id]})")
            continue
        rows.append(
            {
                "run_id": run.id,
                "document_id": doc_id,
                "repeat": 0,
                "label": label,
                "status": "ok",
                "raw": c.raw if c.raw is not None else c.label,
                "created_at": now,
            }
        )
    if conflicts:
        raise InputError(
            f"coder {coder_name!r} already coded these documents differently: {list_problems(conflicts)}; "
            "codes are not overwritten: import the revision under a new coder name"
        )
    bulk_insert(session, Annotation, rows)
    if rows:
        run.params = {
            **run.params,
            "sources": [*run.params.get("sources", []), {**source, "added": len(rows)}],
        }
        run.n_items = run.n_ok = run.n_items + len(rows)
        run.finished_at = now
        run.source = source.get("file")
        session.add(run)
    return len(rows), unchanged


def import_codes(
    project: Project,
    path: str | Path,
    label: str = "label",
    id: str = "id",
    coder: str | None = None,
    coder_column: str | None = None,
    codebook: str | None = None,
    kind: str = "human",
    encoding: str | None = None,
    fmt: str | None = None,
    allow_multiline: bool = False,
) -> CodesImported:
    """Import human (or gold) codes: one coder (``coder``) or long format with a coder column."""
    if coder is not None and not coder.strip():
        raise InputError(f"{arg('coder', coder)}: give the coder a name, e.g. {arg('coder', 'alice')}")
    if (coder is None) == (coder_column is None):
        raise InputError(
            f"name the coder with {arg('coder', 'NAME')}, or give a coder column with {arg('coder_column', 'COL')}"
        )
    cb = project_codebook(project, codebook)
    table = read_table(path, encoding=encoding, fmt=fmt, allow_multiline=allow_multiline)
    table.require(id, "id")
    table.require(label, "label")
    if coder_column:
        table.require(coder_column, "coder_column")
    by_coder: dict[str, list[NewCode]] = {}
    blank = 0
    for i, row in enumerate(table.rows):
        where = table.where(i)
        key, value = cell(row.get(id)), cell(row.get(label))
        name = coder or cell(row.get(coder_column or ""))
        if not key:
            raise InputError(f"{where}: empty id in column {id!r}; every code needs a document id")
        if not name:
            raise InputError(f"{where}: empty coder name in column {coder_column!r}")
        if not value:
            blank += 1  # an uncoded item: missing data, not a label
            continue
        by_coder.setdefault(name, []).append(NewCode(key=key, label=value, raw=value, where=where))
    source = {"file": table.path.name, "sha256": table.sha256, "at": utcnow().isoformat(timespec="seconds")}
    added: dict[str, int] = {}
    unchanged = 0
    normalise_labels(cb, [c for codes in by_coder.values() for c in codes])  # every unknown label at once
    with project.transaction() as session:
        cb_row = register_codebook(session, cb, str(project.codebook_path(cb.name)))
        doc_ids = document_ids(session)
        for name, codes in by_coder.items():
            added[name], same = add_codes(session, cb, cb_row, name, kind, codes, source, doc_ids)
            unchanged += same
    return CodesImported(
        source=str(table.path), coders=added, unchanged=unchanged, blank=blank, codebook=cb.ref
    )
