"""Coding in the browser: the next document of a coder's queue, a code, skip, undo, progress.

A code is one transaction and idempotent: it is keyed by (coder, document), so a double submit or a retry
after a dropped connection stores it once (the same label again changes nothing; another label replaces it,
as a coder correcting itself). It is stored as an ordinary human code (an annotation of the coder's human run
for the codebook's current version), so `agreement`, `validate` and `export` read it like an imported one.
A coder only ever reads its own queue and codes: nothing here returns another coder's code, an LLM label or a
baseline label (blind coding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from annotator.codebook import Codebook
from annotator.errors import InputError, arg
from annotator.project import Project
from annotator.services.results import Result
from annotator.services.workbench.accounts import SignedIn
from annotator.store import coding as rows
from annotator.store.models import Annotation, utcnow
from annotator.store.registry import project_codebook, register_codebook

MAX_MEMO = 2000  # characters of a memo
MAX_SECONDS = 3600.0  # one item's time is capped: a coder who left the page open did not code for hours


@dataclass(frozen=True)
class Progress(Result):
    done: int  # documents coded (skipped ones are not done)
    skipped: int
    assigned: int


@dataclass(frozen=True)
class Item(Result):
    """The document a coder codes next (its text is escaped by whatever shows it)."""

    document: str  # its key
    text: str
    codebook: str  # name (the codes are stored under its current version)
    position: int  # 1-based place in the queue
    label: str | None  # the coder's own earlier code, if it came back to it (undo)
    memo: str | None
    unclear: bool


@dataclass(frozen=True)
class Saved(Result):
    document: str
    label: str | None  # None: skipped
    changed: bool  # False: the same code was already stored (a double submit)


def progress(project: Project, who: SignedIn) -> Progress:
    with project.transaction() as session:
        items = rows.queue(session, who.coder_id)
    done = sum(1 for a, _ in items if a.coded_at is not None and not a.skipped)
    skipped = sum(1 for a, _ in items if a.skipped)
    return Progress(done, skipped, len(items))


def next_item(project: Project, who: SignedIn) -> Item | None:
    """The first document of the queue neither coded nor skipped; None when the queue is done."""
    with project.transaction() as session:
        for pos, (a, doc) in enumerate(rows.queue(session, who.coder_id), start=1):
            if a.coded_at is None and not a.skipped:
                return Item(doc.doc_key, doc.text, a.codebook, pos, None, a.memo, a.unclear)
    return None


def codebook(project: Project, name: str) -> Codebook:
    """The project's current codebook ``name``: the one shown beside a document and its codes are stored under."""
    return project_codebook(project, name)


def _label(codebook: Codebook, label: str) -> str:
    normal = codebook.normalize_label(label)
    if normal is None:
        raise InputError(
            f"{arg('label', label)}: not a label of codebook {codebook.name} (labels: "
            f"{', '.join(codebook.allowed_labels)})"
        )
    return normal


def _seconds(seconds: float | None) -> float | None:
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    return min(float(seconds), MAX_SECONDS)


def submit(
    project: Project,
    who: SignedIn,
    document: str,
    label: str,
    seconds: float | None = None,
    memo: str | None = None,
    unclear: bool = False,
) -> Saved:
    """Store ``who``'s code for ``document`` (a document of its own queue), in one transaction.

    Two submits of the same code at once (a double click, a retry racing the first try) may both find no code
    stored and both insert: the database's unique key on (run, document) refuses the second, which is then
    tried again and finds the first (so it is stored once, and the second changes nothing)."""
    try:
        return _submit(project, who, document, label, seconds, memo, unclear)
    except IntegrityError:
        return _submit(project, who, document, label, seconds, memo, unclear)


def _submit(
    project: Project,
    who: SignedIn,
    document: str,
    label: str,
    seconds: float | None,
    memo: str | None,
    unclear: bool,
) -> Saved:
    with project.transaction() as session:
        found = rows.assignment(session, who.coder_id, document)
        if found is None:
            raise InputError(f"{arg('document', document)}: not in {who.name}'s queue")
        a, doc = found
        cb = project_codebook(project, a.codebook)
        value = _label(cb, label)
        row = register_codebook(session, cb, str(project.codebook_path(cb.name)))
        run = rows.human_run(session, who.coder_id, row)
        assert run.id is not None and doc.id is not None
        stored = rows.stored_label(session, run.id, doc.id)
        memo = (memo or "").strip()[:MAX_MEMO] or None
        changed = (
            stored is None or stored.label != value or a.memo != memo or a.unclear != unclear or a.skipped
        )
        if stored is None:
            session.add(Annotation(run_id=run.id, document_id=doc.id, label=value, raw=value, status="ok"))
            run.n_items, run.n_ok = run.n_items + 1, run.n_ok + 1
            session.add(run)
        elif stored.label != value:
            stored.label, stored.raw, stored.created_at = value, value, utcnow()
            session.add(stored)
        if changed:
            spent = _seconds(seconds)
            if spent is not None:
                a.seconds = (a.seconds or 0.0) + spent
            a.coded_at, a.memo, a.unclear, a.skipped = utcnow(), memo, unclear, False
            session.add(a)
    return Saved(document, value, changed)


def skip(
    project: Project, who: SignedIn, document: str, memo: str | None = None, unclear: bool = False
) -> Saved:
    """Set ``document`` aside uncoded (it stays missing; the lead sees it skipped, with the memo)."""
    with project.transaction() as session:
        found = rows.assignment(session, who.coder_id, document)
        if found is None:
            raise InputError(f"{arg('document', document)}: not in {who.name}'s queue")
        a, _ = found
        changed = not a.skipped
        a.skipped, a.coded_at = True, utcnow()
        a.memo, a.unclear = (memo or "").strip()[:MAX_MEMO] or a.memo, unclear or a.unclear
        session.add(a)
    return Saved(document, None, changed)


def undo(project: Project, who: SignedIn) -> str | None:
    """Take back the coder's latest code or skip: the document is next again. Returns its key (None: nothing)."""
    with project.transaction() as session:
        done = [(a, d) for a, d in rows.queue(session, who.coder_id) if a.coded_at is not None]
        if not done:
            return None
        a, doc = max(done, key=lambda ad: ad[0].coded_at or utcnow())
        assert doc.id is not None
        if not a.skipped:
            cb = project_codebook(project, a.codebook)
            row = register_codebook(session, cb, str(project.codebook_path(cb.name)))
            run = rows.human_run(session, who.coder_id, row)
            assert run.id is not None
            if rows.remove_code(session, run.id, doc.id):
                run.n_items, run.n_ok = max(run.n_items - 1, 0), max(run.n_ok - 1, 0)
                session.add(run)
        a.coded_at, a.skipped = None, False
        session.add(a)
        return doc.doc_key
