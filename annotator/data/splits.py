"""Dev/test splits. The test split is held out: nothing may be tuned on it, so an existing one is never
reassigned silently (``force`` does it and is recorded in the splits table, and so in the report)."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
from sqlalchemy import bindparam, func, update
from sqlmodel import Session, col, select

from annotator.errors import SplitError, arg
from annotator.project import Project
from annotator.store.models import Annotation, Coder, Document, Run, SplitEvent

MISSING = "<missing>"


def _strata_from_meta(session: Session, column: str) -> dict[int, str]:
    docs = session.execute(select(Document.id, Document.meta)).all()
    if not any(column in (meta or {}) for _, meta in docs):
        keys = sorted({k for _, meta in docs for k in (meta or {})})
        raise SplitError(
            f"no document has a metadata column {column!r} (they have: {', '.join(keys) or 'none'}); "
            f"name one of those with {arg('stratify_by', 'COLUMN')}"
        )
    return {doc_id: str((meta or {}).get(column, MISSING)) for doc_id, meta in docs}


def _strata_from_coder(session: Session, coder_name: str) -> dict[int, str]:
    coder = session.execute(select(Coder).where(col(Coder.name) == coder_name)).scalar_one_or_none()
    if coder is None:
        names = session.execute(select(Coder.name).order_by(col(Coder.name))).scalars().all()
        raise SplitError(f"no coder {coder_name!r} (coders: {', '.join(names) or 'none yet'})")
    labels = session.execute(
        select(Annotation.document_id, Annotation.label)
        .join(Run, col(Run.id) == Annotation.run_id)
        .where(col(Run.coder_id) == coder.id, col(Annotation.repeat) == 0, col(Annotation.status) == "ok")
        .order_by(col(Annotation.run_id))
    ).all()
    strata: dict[int, str] = {}
    for doc_id, label in labels:
        strata.setdefault(doc_id, label or MISSING)
    ids = session.execute(select(Document.id)).scalars().all()
    return {doc_id: strata.get(doc_id, MISSING) for doc_id in ids}


def assign(keys: list[str], strata: list[str], test: float, seed: int) -> list[bool]:
    """Which items go to test. round(test * N) items in all, shared among strata by largest remainder (so
    many small strata still give the requested share; ties broken by a seeded draw); within each stratum,
    items sorted by key, then a seeded shuffle. Same keys, strata, share and seed give the same split."""
    rng = np.random.default_rng(seed)
    groups: dict[str, list[int]] = defaultdict(list)
    for i in sorted(range(len(keys)), key=keys.__getitem__):
        groups[strata[i]].append(i)
    names = sorted(groups)
    quota = {s: test * len(groups[s]) for s in names}
    counts = {s: math.floor(quota[s]) for s in names}
    tiebreak = dict(zip(names, rng.permutation(len(names)).tolist(), strict=True))
    extra = round(test * len(keys)) - sum(counts.values())
    for s in sorted(names, key=lambda s: (counts[s] - quota[s], tiebreak[s]))[: max(0, extra)]:
        counts[s] += 1
    is_test = [False] * len(keys)
    for stratum in names:
        members = groups[stratum]
        for j in rng.permutation(len(members))[: counts[stratum]]:
            is_test[members[j]] = True
    return is_test


def make_split(
    project: Project,
    test: float,
    seed: int,
    stratify_by: str | None = None,
    stratify_by_coder: str | None = None,
    force: bool = False,
    new_only: bool = False,
) -> SplitEvent:
    """Assign documents to dev and test: all of them, or (``new_only``) those not assigned yet, leaving the
    existing split as it is. Every call is recorded in the splits table."""
    if not 0 < test < 1:
        raise SplitError(f"{arg('test', test)}: the test share must be between 0 and 1, e.g. 0.3")
    if seed < 0:
        raise SplitError(f"{arg('seed', seed)}: use a whole number of 0 or more")
    if stratify_by and stratify_by_coder:
        raise SplitError(
            f"use {arg('stratify_by', stratify_by)} or {arg('stratify_by_coder', stratify_by_coder)}, not both"
        )
    if force and new_only:
        raise SplitError(
            f"use {arg('force')} (reassign everything) or {arg('new_only')} (assign new documents), not both"
        )
    with project.transaction() as session:
        n_docs = session.execute(select(func.count(col(Document.id)))).scalar_one()
        if n_docs == 0:
            raise SplitError("no documents to split; import some first (`annotator import docs FILE`)")
        n_test = session.execute(
            select(func.count(col(Document.id))).where(col(Document.split) == "test")
        ).scalar_one()
        if n_test and not (force or new_only):
            last = session.execute(select(SplitEvent).order_by(col(SplitEvent.id).desc())).scalars().first()
            made = f" on {last.created_at:%Y-%m-%d} with seed {last.seed}" if last else ""
            raise SplitError(
                f"a test split already exists ({n_test} documents{made}); it is held out and is not reassigned. "
                f"Use {arg('new_only')} to assign documents imported since, or {arg('force')} to redo it all "
                "(recorded, and "
                "shown in the report)"
            )
        if stratify_by:
            strata = _strata_from_meta(session, stratify_by)
        elif stratify_by_coder:
            strata = _strata_from_coder(session, stratify_by_coder)
        else:
            strata = {}
        query = select(Document.id, Document.doc_key)
        if new_only:
            query = query.where(col(Document.split).is_(None))
        docs = session.execute(query).all()
        if not docs:
            raise SplitError("every document already has a split; nothing to assign")
        ids = [d for d, _ in docs]
        flags = assign([k for _, k in docs], [strata.get(d, "") for d in ids], test, seed)
        params = [{"b_id": d, "b_split": "test" if t else "dev"} for d, t in zip(ids, flags, strict=True)]
        documents = Document.__table__  # type: ignore[attr-defined]
        stmt = update(documents).where(documents.c.id == bindparam("b_id"))
        session.connection().execute(stmt.values(split=bindparam("b_split")), params)
        how = (
            f"meta:{stratify_by}"
            if stratify_by
            else f"coder:{stratify_by_coder}"
            if stratify_by_coder
            else None
        )
        event = SplitEvent(
            test_fraction=test,
            seed=seed,
            forced=bool(n_test and force),
            scope="new" if new_only else "all",
            stratify=how,
            n_test=sum(flags),
            n_dev=len(flags) - sum(flags),
        )
        session.add(event)
    return event
