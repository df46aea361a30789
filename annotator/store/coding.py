"""The workbench's rows: coder accounts (by the hash of their token), queues (assignments) and the codes given
in the browser, which are ordinary human annotations of the coder's human run for the codebook version.

Every function works inside the caller's transaction (``project.transaction()``); none commits.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlmodel import Session, col

from annotator.store.models import (
    Annotation,
    Assignment,
    CodebookVersion,
    Coder,
    CoderAccount,
    Document,
    Run,
    utcnow,
)


def token_hash(token: str) -> str:
    """The only form in which a sign-in token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class AccountRow:
    account_id: int
    coder_id: int
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None


def _account_rows(session: Session, *where: Any) -> list[AccountRow]:
    rows = session.execute(
        select(CoderAccount, col(Coder.name))
        .join(Coder, col(Coder.id) == col(CoderAccount.coder_id))
        .where(*where)
        .order_by(col(Coder.name))
    ).all()
    return [AccountRow(a.id, a.coder_id, name, a.role, a.created_at, a.revoked_at) for a, name in rows]


def accounts(session: Session) -> list[AccountRow]:
    return _account_rows(session)


def account_by_name(session: Session, name: str) -> AccountRow | None:
    found = _account_rows(session, col(Coder.name) == name)
    return found[0] if found else None


def account_by_id(session: Session, account_id: int) -> AccountRow | None:
    found = _account_rows(session, col(CoderAccount.id) == account_id)
    return found[0] if found else None


def account_by_token(session: Session, token: str) -> AccountRow | None:
    found = _account_rows(session, col(CoderAccount.token_hash) == token_hash(token))
    return found[0] if found else None


def coder_by_name(session: Session, name: str) -> Coder | None:
    return session.execute(select(Coder).where(col(Coder.name) == name)).scalar_one_or_none()


def human_run(session: Session, coder_id: int, codebook_row: CodebookVersion, kind: str = "human") -> Run:
    """The coder's run of ``kind`` (human or gold) for this codebook version (the one `import codes` adds to),
    created if new.

    The coder's row is locked first (PostgreSQL: ``SELECT ... FOR UPDATE``; SQLite has one writer anyway), so
    two codes of the same coder arriving at once (a double click on its first document) cannot both create a
    run: the second waits and finds the first's."""
    session.execute(select(col(Coder.id)).where(col(Coder.id) == coder_id).with_for_update())
    run = session.execute(
        select(Run).where(
            col(Run.coder_id) == coder_id, col(Run.codebook_id) == codebook_row.id, col(Run.kind) == kind
        )
    ).scalar_one_or_none()
    if run is None:
        assert codebook_row.id is not None
        run = Run(
            coder_id=coder_id,
            kind=kind,  # type: ignore[arg-type]
            codebook_id=codebook_row.id,
            status="done",
            params={"sources": [{"file": "workbench"}]},
            finished_at=utcnow(),
            source="workbench",
        )
        session.add(run)
        session.flush()
    return run


def assigned_documents(session: Session, codebook: str) -> set[int]:
    """Every document some coder was queued for this codebook."""
    return set(
        session.execute(
            select(col(Assignment.document_id)).where(col(Assignment.codebook) == codebook)
        ).scalars()
    )


@dataclass(frozen=True)
class BatchRow:
    batch: int
    codebook: str
    assigned_at: datetime
    coders: list[str]
    items: int  # queue entries (a shared document counts once per coder)
    shared: int  # queue entries marked overlap
    documents: int  # distinct documents


def batches(session: Session) -> list[BatchRow]:
    """Every `assign` call so far, newest first, with its coders and counts."""
    columns = (Assignment.batch, Assignment.codebook, Assignment.assigned_at, Assignment.document_id)
    found = session.execute(
        select(*(col(c) for c in columns), col(Assignment.overlap), col(Coder.name))
        .join(Coder, col(Coder.id) == col(Assignment.coder_id))
        .order_by(col(Assignment.batch))
    ).all()
    grouped: dict[int, list[Any]] = {}
    for row in found:
        grouped.setdefault(row[0], []).append(row)
    return [
        BatchRow(
            batch,
            rs[0][1],
            min(r[2] for r in rs),
            sorted({r[5] for r in rs}),
            len(rs),
            sum(1 for r in rs if r[4]),
            len({r[3] for r in rs}),
        )
        for batch, rs in sorted(grouped.items(), reverse=True)
    ]


def document_splits(session: Session) -> list[tuple[int, str | None, dict[str, Any] | None]]:
    """Every document's id, split and metadata."""
    found = session.execute(select(col(Document.id), col(Document.split), col(Document.meta))).all()
    return [(int(i), split, meta) for i, split, meta in found]


def next_batch(session: Session) -> int:
    return int(session.execute(select(func.coalesce(func.max(Assignment.batch), 0))).scalar_one()) + 1


def last_position(session: Session, coder_id: int, codebook: str) -> int:
    found = session.execute(
        select(func.max(Assignment.position)).where(
            col(Assignment.coder_id) == coder_id, col(Assignment.codebook) == codebook
        )
    ).scalar_one()
    return int(found or 0)


def queue(session: Session, coder_id: int) -> list[tuple[Assignment, Document]]:
    """The coder's queue, in order (every codebook it was queued for)."""
    return list(
        session.execute(
            select(Assignment, Document)
            .join(Document, col(Document.id) == col(Assignment.document_id))
            .where(col(Assignment.coder_id) == coder_id)
            .order_by(col(Assignment.codebook), col(Assignment.position))
        ).all()
    )


def assignment(session: Session, coder_id: int, doc_key: str) -> tuple[Assignment, Document] | None:
    row = session.execute(
        select(Assignment, Document)
        .join(Document, col(Document.id) == col(Assignment.document_id))
        .where(col(Assignment.coder_id) == coder_id, col(Document.doc_key) == doc_key)
    ).first()
    return None if row is None else (row[0], row[1])


def stored_label(session: Session, run_id: int, document_id: int) -> Annotation | None:
    return session.execute(
        select(Annotation).where(
            col(Annotation.run_id) == run_id,
            col(Annotation.document_id) == document_id,
            col(Annotation.repeat) == 0,
        )
    ).scalar_one_or_none()


def human_labels(session: Session, coder_id: int, codebook: str) -> dict[int, str]:
    """Document id -> the coder's label under any version of the codebook (the latest code wins)."""
    rows = session.execute(
        select(col(Annotation.document_id), col(Annotation.label))
        .join(Run, col(Run.id) == col(Annotation.run_id))
        .join(CodebookVersion, col(CodebookVersion.id) == col(Run.codebook_id))
        .where(
            col(Run.coder_id) == coder_id,
            col(Run.kind) == "human",
            col(CodebookVersion.name) == codebook,
            col(Annotation.label).is_not(None),
        )
        .order_by(col(Annotation.created_at))
    ).all()
    return {doc: label for doc, label in rows if label is not None}


def remove_code(session: Session, run_id: int, document_id: int) -> bool:
    """Delete the run's code of the document; whether there was one."""
    done = session.execute(
        delete(Annotation).where(col(Annotation.run_id) == run_id, col(Annotation.document_id) == document_id)
    )
    return bool(getattr(done, "rowcount", 0))


def revoke(session: Session, account_id: int) -> None:
    session.execute(
        update(CoderAccount).where(col(CoderAccount.id) == account_id).values(revoked_at=utcnow())
    )
