"""Each coder's asked set: the documents it was asked to code, the units every comparison is computed on.

A run (LLM or baseline) was asked the documents it selected, stored in ``run_documents`` when the run is
created. A human or gold import was asked what it coded. A document outside a coder's asked set is out of
scope for every figure about that coder; a document inside it without a valid answer is an error.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlmodel import Session, col

from annotator.store.db import bulk_insert
from annotator.store.models import Annotation, RunDocument

CHUNK = 900  # bound parameters per IN list (SQLite's default limit is 999 on older builds)


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def asked_sets(session: Session, run_ids: Iterable[int]) -> dict[int, set[int]]:
    """Run id -> the document ids it was asked: its stored selection, or (imports) the documents it coded."""
    ids = sorted(set(run_ids))
    out: dict[int, set[int]] = {i: set() for i in ids}
    for chunk in _chunks(ids):
        rows = session.execute(
            select(col(RunDocument.run_id), col(RunDocument.document_id)).where(
                col(RunDocument.run_id).in_(chunk)
            )
        ).all()
        for run_id, doc_id in rows:
            out[run_id].add(doc_id)
    bare = [i for i in ids if not out[i]]
    for chunk in _chunks(bare):
        rows = session.execute(
            select(col(Annotation.run_id), col(Annotation.document_id))
            .where(col(Annotation.run_id).in_(chunk))
            .distinct()
        ).all()
        for run_id, doc_id in rows:
            out[run_id].add(doc_id)
    return out


def store_asked(session: Session, run_id: int, document_ids: Iterable[int]) -> None:
    """Record (or replace) a run's asked set, inside the caller's transaction."""
    session.connection().execute(delete(RunDocument).where(col(RunDocument.run_id) == run_id))
    bulk_insert(
        session, RunDocument, [{"run_id": run_id, "document_id": d} for d in sorted(set(document_ids))]
    )
