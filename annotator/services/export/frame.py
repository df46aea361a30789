"""The export frame: one row per answer of a run, with the provenance columns (see ``COLUMNS``).

One row per answer (document x repeat) of the run, with the document id (the user's own doc_key, in a column
named ``id``, so that `annotator import codes FILE --coder NAME` reads an export back with its defaults), the
label, its probability, the answer's status and error, and the run, model, prompt and codebook (name,
version, sha256) that made it. Invalid and error rows keep an empty label and carry the raw answer text:
a label is never invented.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from annotator.codebook import Codebook
from annotator.errors import AnnotatorError, InputError, arg
from annotator.project import Project
from annotator.redaction import redact_text
from annotator.store.models import (
    Annotation,
    CodebookVersion,
    Coder,
    Document,
    DocumentImport,
    PromptVersion,
    Run,
    as_utc,
)
from annotator.store.registry import stored_codebook

from .result import SPLITS, ExportSplit

META_PREFIX = "meta_"

# the columns of every export, in order, with what they hold (also the Stata variable labels, <= 80 chars)
COLUMNS: dict[str, str] = {
    "id": "document id as imported",
    "label": "the run's label; empty when status is not ok",
    "probability": "probability of the label, when the model gave one",
    "status": "ok, invalid (answer not a codebook label) or error (no answer)",
    "error": "why the answer is invalid or missing",
    "raw": "raw answer text of invalid and error rows",
    "rationale": "the model's rationale, when the prompt asks for one",
    "repeat": "repeat number (0: the first answer to each document)",
    "split": "the document's split: dev, test or empty",
    "run_id": "annotator run id",
    "coder": "coder name (the model for LLM runs)",
    "kind": "run kind: llm, baseline, human or gold",
    "model": "model (PROVIDER/MODEL)",
    "prompt": "prompt template name",
    "prompt_version": "prompt template version",
    "prompt_sha256": "sha256 of the prompt template",
    "codebook": "codebook name",
    "codebook_version": "codebook version",
    "codebook_sha256": "sha256 of the codebook (canonical JSON)",
    "created_at": "when the answer was made (ISO 8601, UTC)",
}
TEXT_COLUMN = "text"
_INT_COLUMNS = ("repeat", "run_id", "prompt_version", "codebook_version")


@dataclass
class _Context:
    run: Run
    coder: str
    codebook: Codebook | None
    codebook_row: CodebookVersion | None
    prompt: PromptVersion | None


def _iso(t: datetime | None) -> str | None:
    u = as_utc(t)
    return None if u is None else u.isoformat(timespec="seconds").replace("+00:00", "Z")


def _context(session: Session, run_id: int) -> _Context:
    run = session.get(Run, run_id)
    if run is None:
        raise AnnotatorError(f"no run {run_id}; `annotator runs` lists them")
    coder = session.get(Coder, run.coder_id)
    row = session.get(CodebookVersion, run.codebook_id) if run.codebook_id is not None else None
    book = stored_codebook(session, row.name, row.version) if row is not None else None
    prompt = session.get(PromptVersion, run.prompt_id) if run.prompt_id is not None else None
    return _Context(run, coder.name if coder else "", book, row, prompt)


def _check_split(split: str | None) -> ExportSplit:
    for known in SPLITS:
        if (split or "all") == known:
            return known
    raise InputError(f"{arg('split', split)}: use dev, test or all")


def _frame(
    session: Session,
    ctx: _Context,
    split: str,
    repeat: int | None,
    text: bool,
    meta: bool,
) -> pd.DataFrame:
    run = ctx.run
    if repeat is not None and repeat < 0:
        raise InputError(
            f"{arg('repeat', repeat)}: use 0 (the first answer) or a higher repeat number, or all"
        )
    q = (
        sa_select(Annotation, Document)
        .join(Document, col(Document.id) == col(Annotation.document_id))
        .where(col(Annotation.run_id) == run.id)
        .order_by(col(Document.id), col(Annotation.repeat))
    )
    if split != "all":
        q = q.where(col(Document.split) == split)
    if repeat is not None:
        q = q.where(col(Annotation.repeat) == repeat)
    pairs = session.execute(q).all()
    if not pairs:
        _explain_empty(session, run, split, repeat)
    book, prompt, cb = ctx.codebook, ctx.prompt, ctx.codebook_row
    rows: list[dict[str, Any]] = []
    for a, d in pairs:
        ok = a.status == "ok"
        row: dict[str, Any] = {
            "id": d.doc_key,
            "label": a.label if ok else None,
            "probability": a.probability,
            "status": a.status,
            "error": redact_text(a.error),
            "raw": None if ok else redact_text(a.raw),
            "rationale": a.rationale,
            "repeat": a.repeat,
            "split": d.split,
            "run_id": run.id,
            "coder": ctx.coder,
            "kind": run.kind,
            "model": run.model,
            "prompt": prompt.name if prompt else None,
            "prompt_version": prompt.version if prompt else None,
            "prompt_sha256": prompt.sha256 if prompt else None,
            "codebook": cb.name if cb else (book.name if book else None),
            "codebook_version": cb.version if cb else None,
            "codebook_sha256": cb.sha256 if cb else None,
            "created_at": _iso(a.created_at),
        }
        if text:
            row[TEXT_COLUMN] = d.text
        if meta:
            for k, v in (d.meta or {}).items():
                row[META_PREFIX + str(k)] = v
        rows.append(row)
    frame = pd.DataFrame.from_records(rows)
    columns = [*COLUMNS, *([TEXT_COLUMN] if text else [])]
    extra = sorted(c for c in frame.columns if c not in columns)
    frame = frame.reindex(columns=[*columns, *extra])
    for c in _INT_COLUMNS:
        frame[c] = frame[c].astype("Int64")
    frame["probability"] = frame["probability"].astype("float64")
    frame.attrs["id_label"] = id_label(session)
    return frame


def _explain_empty(session: Session, run: Run, split: str, repeat: int | None) -> None:
    splits = sorted(
        {
            s or "none"
            for s in session.execute(
                sa_select(col(Document.split))
                .join(Annotation, col(Annotation.document_id) == col(Document.id))
                .where(col(Annotation.run_id) == run.id)
                .distinct()
            ).scalars()
        }
    )
    repeats = sorted(
        session.execute(
            sa_select(col(Annotation.repeat)).where(col(Annotation.run_id) == run.id).distinct()
        ).scalars()
    )
    if not repeats:
        raise AnnotatorError(f"run {run.id} has no answers yet (status {run.status}); nothing to export")
    if repeat is not None and repeat not in repeats:
        raise InputError(
            f"{arg('repeat', repeat)}: run {run.id} has repeats {', '.join(map(str, repeats))}; choose one of them"
        )
    raise InputError(
        f"{arg('split', split)}: run {run.id} has no answers on the {split} split (its documents' splits: "
        f"{', '.join(splits)}); use {arg('split', 'all')} or another split"
    )


def export_frame(
    project: Project,
    run_id: int,
    split: str | None = None,
    repeat: int | None = 0,
    text: bool = False,
    meta: bool = False,
) -> pd.DataFrame:
    """The labels of a run as a DataFrame, with provenance columns (see ``COLUMNS``).

    ``split``: dev, test or all (default). ``repeat``: which repeat (0, the first answer, by default; None for
    every repeat). ``text`` adds the document text, ``meta`` its metadata (columns ``meta_<name>``).
    """
    split = _check_split(split)
    with project.transaction() as session:
        return _frame(session, _context(session, run_id), split, repeat, text, meta)


def id_label(session: Session) -> str:
    """What the id column holds, in the user's words: the id column their document files had."""
    columns = sorted(set(session.execute(sa_select(col(DocumentImport.id_column))).scalars().all()))
    if len(columns) == 1:
        return f"document id (column {columns[0]} of the imported file)"[:80]
    if columns:
        return f"document id as imported (columns {', '.join(columns)})"[:80]
    return COLUMNS["id"]
