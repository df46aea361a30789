"""`annotator assign`: queue documents for human coders, with an overlap every coder gets.

Each coder's queue holds ``n`` documents: the ``overlap`` documents shared by every coder of the call (so
human-human reliability is measured on them), and ``n - overlap`` of its own. Documents come from one split
(dev by default: the test split is for validation, and gold built on it must not have been looked at while
the prompt was tuned) and from those no coder was queued for under this codebook yet, so a second call adds
new documents. The draw is seeded (``numpy.random.default_rng(seed)``): the same call on the same project
queues the same documents. With ``stratify_by`` the documents of each metadata value are interleaved, so
every prefix of a queue is balanced over the groups, not only the whole.

The overlap documents are spread evenly through each queue (not all first, not all last), so the dashboard's
alpha fills as coding proceeds. A coder's codes are ordinary human codes: what a coder was queued for and did
not code yet is missing, and human coders' asked sets are what they coded (see `annotator.store.asked`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from annotator.data.selection import parse_names
from annotator.data.splits import MISSING
from annotator.errors import InputError, arg
from annotator.project import Project
from annotator.services.results import Result
from annotator.store import coding as rows
from annotator.store.models import Assignment, Document
from annotator.store.registry import codebook_files, project_codebook, register_codebook


@dataclass(frozen=True)
class Assigned(Result):
    """What `assign` queued."""

    batch: int  # the number of this assignment (each call gets the next)
    codebook: str  # name@version the codes will be stored under
    split: str
    seed: int
    stratify_by: str | None
    coders: list[str]
    per_coder: int  # documents added to each coder's queue
    overlap: int  # of which every coder has the same
    documents: int  # distinct documents queued: overlap + coders x (per_coder - overlap)
    available: int  # documents of the split no coder was queued for before this call


def _check_numbers(n: int, overlap: int, coders: list[str]) -> None:
    if not coders:
        raise InputError(f"{arg('coders', '')}: name the coders, e.g. alice,bob")
    if len(set(coders)) != len(coders):
        raise InputError(f"{arg('coders', ','.join(coders))}: a coder is named twice")
    if n < 1:
        raise InputError(f"{arg('n', n)}: give each coder at least 1 document")
    if overlap < 0 or overlap > n:
        raise InputError(
            f"{arg('overlap', overlap)}: use 0 to {n} (the documents every coder gets, of {arg('n', n)})"
        )
    if overlap and len(coders) < 2:
        raise InputError(f"{arg('overlap', overlap)}: an overlap needs two or more coders")


def _interleave(ids: list[int], strata: dict[int, str], rng: np.random.Generator) -> list[int]:
    """``ids`` shuffled; with strata, taken round-robin from each stratum's shuffled documents."""
    order = [ids[i] for i in rng.permutation(len(ids))]
    if not strata:
        return order
    groups: dict[str, list[int]] = defaultdict(list)
    for d in order:
        groups[strata.get(d, MISSING)].append(d)
    queues = [groups[k] for k in sorted(groups)]
    out: list[int] = []
    while any(queues):
        for q in queues:
            if q:
                out.append(q.pop(0))
    return out


def _spread(shared: list[int], own: list[int]) -> list[tuple[int, bool]]:
    """``own`` with ``shared`` placed at evenly spaced positions; each item with whether it is shared."""
    total = len(shared) + len(own)
    slots = {round((i + 0.5) * total / len(shared) - 0.5) for i in range(len(shared))} if shared else set()
    s, o, out = iter(shared), iter(own), []
    for pos in range(total):
        out.append((next(s), True) if pos in slots else (next(o), False))
    return out


def assign(
    project: Project,
    coders: str | list[str],
    n: int,
    overlap: int = 0,
    split: str = "dev",
    stratify_by: str | None = None,
    seed: int = 0,
    codebook: str | None = None,
) -> Assigned:
    """Queue ``n`` documents of ``split`` for each coder, ``overlap`` of them shared (see the module docstring)."""
    names = parse_names(coders)
    _check_numbers(n, overlap, names)
    if split not in ("dev", "test", "all"):
        raise InputError(f"{arg('split', split)}: use dev, test or all")
    cb = project_codebook(project, codebook)
    with project.transaction() as session:
        ids = []
        for name in names:
            found = rows.account_by_name(session, name)
            if found is None or found.revoked_at is not None:
                raise InputError(
                    f"coder {name!r} has no open account: add it first (`annotator coders add {name}`)"
                )
            ids.append(found.coder_id)
        taken = rows.assigned_documents(session, cb.name)
        docs = session.execute(
            Document.__table__.select()  # type: ignore[attr-defined]
        ).all()
        pool = [d.id for d in docs if d.id not in taken and (split == "all" or d.split == split)]
        if split != "all" and not any(d.split for d in docs):
            raise InputError(
                f"no document has a split yet: run `annotator split` first (or {arg('split', 'all')})"
            )
        need = overlap + len(names) * (n - overlap)
        if need > len(pool):
            raise InputError(
                f"{need} documents needed ({arg('overlap', overlap)} + {len(names)} coders x {n - overlap}) but "
                f"{len(pool)} of the {split} split are not queued yet: lower {arg('n', n)} or {arg('overlap', overlap)}"
            )
        strata = {}
        if stratify_by is not None:
            if not any(stratify_by in (d.meta or {}) for d in docs):
                keys = sorted({k for d in docs for k in (d.meta or {})})
                raise InputError(
                    f"{arg('stratify_by', stratify_by)}: no document has that metadata column "
                    f"(they have: {', '.join(keys) or 'none'})"
                )
            strata = {d.id: str((d.meta or {}).get(stratify_by, MISSING)) for d in docs}
        order = _interleave(sorted(pool), strata, np.random.default_rng(seed))
        shared, rest = order[:overlap], order[overlap:need]
        row = register_codebook(session, cb, str(project.codebook_path(cb.name)))
        batch = rows.next_batch(session)
        for k, coder_id in enumerate(ids):
            own = rest[k * (n - overlap) : (k + 1) * (n - overlap)]
            start = rows.last_position(session, coder_id, cb.name)
            for pos, (doc_id, is_shared) in enumerate(_spread(shared, own), start=start + 1):
                session.add(
                    Assignment(
                        coder_id=coder_id,
                        document_id=doc_id,
                        codebook=cb.name,
                        position=pos,
                        overlap=is_shared,
                        batch=batch,
                    )
                )
        del row
    return Assigned(batch, cb.ref, split, seed, stratify_by, names, n, overlap, need, len(pool))


@dataclass(frozen=True)
class Choices(Result):
    """What the lead's Assign page offers: the open accounts, the codebooks, for each codebook the documents of
    each split no coder was queued for yet, and the metadata columns to stratify by."""

    coders: list[str]
    codebooks: list[str]
    available: dict[str, dict[str, int]]  # codebook -> {"dev": n, "test": n, "all": n}
    columns: list[str]


@dataclass(frozen=True)
class Batch(Result):
    """One `assign` call, as stored."""

    batch: int
    codebook: str
    assigned_at: datetime
    coders: list[str]
    items: int  # queue entries (a shared document counts once per coder)
    shared_documents: int  # documents every coder of the call got
    documents: int  # distinct documents


def choices(project: Project) -> Choices:
    """The open coder accounts, codebooks, documents still free per split, and metadata columns."""
    names = [f.stem for f in codebook_files(project)]
    with project.transaction() as session:
        coders = [a.name for a in rows.accounts(session) if a.revoked_at is None]
        docs = rows.document_splits(session)
        taken = {name: rows.assigned_documents(session, name) for name in names}
    columns = sorted({k for _, _, meta in docs for k in (meta or {})})
    available = {}
    for name in names:
        free = [split for doc_id, split, _ in docs if doc_id not in taken[name]]
        available[name] = {"dev": free.count("dev"), "test": free.count("test"), "all": len(free)}
    return Choices(coders, names, available, columns)


def history(project: Project) -> list[Batch]:
    """Every assignment so far, newest first."""
    with project.transaction() as session:
        found = rows.batches(session)
    return [
        Batch(
            b.batch,
            b.codebook,
            b.assigned_at,
            b.coders,
            b.items,
            b.shared // max(len(b.coders), 1),
            b.documents,
        )
        for b in found
    ]
