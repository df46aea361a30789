"""The Batch API files of LLM runs (`annotator run --batch`): which are open, and storing what a finished one
answered (its answers in the cache, its cost on the run, the batch marked collected) in one transaction, so a
crash in between neither loses an answer nor counts its cost twice."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from annotator.store.db import insert_ignore
from annotator.store.models import LLMCache, ProviderBatch, Run, utcnow


def run_batches(session: Session, run_id: int, open_only: bool = False) -> list[ProviderBatch]:
    """A run's batches, oldest first (``open_only``: those not collected yet)."""
    query = select(ProviderBatch).where(col(ProviderBatch.run_id) == run_id)
    if open_only:
        query = query.where(col(ProviderBatch.collected_at).is_(None))
    return list(session.exec(query.order_by(col(ProviderBatch.id))))


def open_batches(session: Session, run_ids: list[int]) -> dict[int, list[ProviderBatch]]:
    """The batches not collected yet of each of ``run_ids`` that has any."""
    found: dict[int, list[ProviderBatch]] = {}
    if run_ids:
        query = select(ProviderBatch).where(
            col(ProviderBatch.run_id).in_(run_ids), col(ProviderBatch.collected_at).is_(None)
        )
        for row in session.exec(query.order_by(col(ProviderBatch.id))):
            found.setdefault(row.run_id, []).append(row)
    return found


def update_state(session: Session, batch_id: int, state: str, answered: int, failed: int) -> None:
    session.connection().execute(
        update(ProviderBatch)
        .where(col(ProviderBatch.id) == batch_id)
        .values(state=state, answered=answered, failed=failed, checked_at=utcnow())
    )


def store_collected(
    session: Session, batch: ProviderBatch, cache_rows: list[dict[str, Any]], cost: float, error: str | None
) -> bool:
    """A finished batch's answers into the cache and its cost onto the run; returns False (and writes nothing)
    when another process collected it first."""
    marked = session.connection().execute(
        update(ProviderBatch)
        .where(col(ProviderBatch.id) == batch.id, col(ProviderBatch.collected_at).is_(None))
        .values(
            state=batch.state,
            answered=batch.answered,
            failed=batch.failed,
            checked_at=utcnow(),
            collected_at=utcnow(),
            error=error,
        )
    )
    if marked.rowcount != 1:
        return False
    insert_ignore(session, LLMCache, cache_rows, ["key"])
    if cost:
        session.connection().execute(
            update(Run).where(col(Run.id) == batch.run_id).values(cost_usd=Run.cost_usd + cost)
        )
    return True
