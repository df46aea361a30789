"""What the lead's review and adjudication pages read: a run's answers, the human and gold codes of a
codebook, the labels other runs gave a document, review notes and adjudications. Every function works in the
caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session, col

from annotator.store.asked import asked_sets
from annotator.store.models import (
    Adjudication,
    Annotation,
    CodebookVersion,
    Coder,
    Document,
    ReviewNote,
    Run,
)


@dataclass(frozen=True)
class Answer:
    label: str | None  # None: no valid answer (invalid or error)
    status: str
    rationale: str | None
    probability: float | None


@dataclass(frozen=True)
class RunRow:
    id: int
    kind: str
    coder: str
    model: str | None
    codebook: str  # name
    codebook_id: int | None
    archived: bool


def run_row(session: Session, run_id: int) -> RunRow | None:
    found = session.execute(
        select(Run, col(Coder.name), col(CodebookVersion.name))
        .join(Coder, col(Coder.id) == col(Run.coder_id))
        .join(CodebookVersion, col(CodebookVersion.id) == col(Run.codebook_id))
        .where(col(Run.id) == run_id)
    ).first()
    if found is None:
        return None
    run, coder, book = found
    assert run.id is not None
    return RunRow(run.id, run.kind, coder, run.model, book, run.codebook_id, run.archived_at is not None)


def model_runs(session: Session) -> list[RunRow]:
    """LLM and baseline runs that are not archived, newest first."""
    ids = session.execute(
        select(col(Run.id))
        .where(col(Run.kind).in_(("llm", "baseline")), col(Run.archived_at).is_(None))
        .order_by(col(Run.id).desc())
    ).scalars()
    return [r for r in (run_row(session, i) for i in ids) if r is not None]


def answers(session: Session, run_id: int) -> tuple[set[int], dict[int, Answer]]:
    """The run's asked set and its first answer (repeat 0) to each document it answered."""
    asked = asked_sets(session, [run_id])[run_id]
    rows = session.execute(
        select(Annotation).where(col(Annotation.run_id) == run_id, col(Annotation.repeat) == 0)
    ).scalars()
    out = {
        a.document_id: Answer(a.label if a.status == "ok" else None, a.status, a.rationale, a.probability)
        for a in rows
    }
    return asked, out


def coder_codes(session: Session, codebook: str, kinds: tuple[str, ...]) -> dict[int, dict[str, str]]:
    """Document id -> {coder name: label} of the codebook's coders of ``kinds`` (non-archived runs, every
    version of the codebook; a later code of the same coder wins)."""
    rows = session.execute(
        select(col(Annotation.document_id), col(Coder.name), col(Annotation.label))
        .join(Run, col(Run.id) == col(Annotation.run_id))
        .join(Coder, col(Coder.id) == col(Run.coder_id))
        .join(CodebookVersion, col(CodebookVersion.id) == col(Run.codebook_id))
        .where(
            col(Run.kind).in_(kinds),
            col(Run.archived_at).is_(None),
            col(CodebookVersion.name) == codebook,
            col(Annotation.status) == "ok",
            col(Annotation.repeat) == 0,
        )
        .order_by(col(Annotation.created_at))
    ).all()
    out: dict[int, dict[str, str]] = {}
    for doc, name, label in rows:
        if label is not None:
            out.setdefault(doc, {})[name] = label
    return out


def other_runs(
    session: Session, document_id: int, codebook: str, but: int
) -> list[tuple[int, str, str | None]]:
    """(run id, model or coder, label) of every other non-archived LLM or baseline run on the document."""
    rows = session.execute(
        select(col(Run.id), col(Run.model), col(Coder.name), col(Annotation.label), col(Annotation.status))
        .join(Annotation, col(Annotation.run_id) == col(Run.id))
        .join(Coder, col(Coder.id) == col(Run.coder_id))
        .join(CodebookVersion, col(CodebookVersion.id) == col(Run.codebook_id))
        .where(
            col(Annotation.document_id) == document_id,
            col(Annotation.repeat) == 0,
            col(Run.kind).in_(("llm", "baseline")),
            col(Run.archived_at).is_(None),
            col(Run.id) != but,
            col(CodebookVersion.name) == codebook,
        )
        .order_by(col(Run.id))
    ).all()
    return [
        (rid, model or coder, label if status == "ok" else None) for rid, model, coder, label, status in rows
    ]


def documents(session: Session, ids: set[int]) -> dict[int, Document]:
    if not ids:
        return {}
    found = session.execute(select(Document).where(col(Document.id).in_(sorted(ids)))).scalars()
    return {d.id: d for d in found if d.id is not None}


def document_by_key(session: Session, key: str) -> Document | None:
    return session.execute(select(Document).where(col(Document.doc_key) == key)).scalar_one_or_none()


def notes(session: Session, run_id: int | None = None) -> list[ReviewNote]:
    query = select(ReviewNote).order_by(col(ReviewNote.run_id), col(ReviewNote.document_id))
    if run_id is not None:
        query = query.where(col(ReviewNote.run_id) == run_id)
    return list(session.execute(query).scalars())


def note(session: Session, run_id: int, document_id: int) -> ReviewNote | None:
    return session.execute(
        select(ReviewNote).where(col(ReviewNote.run_id) == run_id, col(ReviewNote.document_id) == document_id)
    ).scalar_one_or_none()


def adjudications(session: Session, gold_id: int) -> dict[int, Adjudication]:
    found = session.execute(select(Adjudication).where(col(Adjudication.gold_id) == gold_id)).scalars()
    return {a.document_id: a for a in found}


def coder_names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(select(col(Coder.id), col(Coder.name)).where(col(Coder.id).in_(sorted(ids)))).all()
    return {i: n for i, n in rows}


def codebook_versions(session: Session, ids: set[int]) -> dict[int, int]:
    """Codebook row id -> its version number."""
    if not ids:
        return {}
    rows = session.execute(
        select(col(CodebookVersion.id), col(CodebookVersion.version)).where(
            col(CodebookVersion.id).in_(sorted(ids))
        )
    ).all()
    return {i: v for i, v in rows}


def gold_coders(session: Session) -> list[tuple[int, str]]:
    rows = session.execute(
        select(col(Coder.id), col(Coder.name)).where(col(Coder.kind) == "gold").order_by(col(Coder.name))
    ).all()
    return [(i, n) for i, n in rows]
