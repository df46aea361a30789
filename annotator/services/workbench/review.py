"""Disagreement review: which texts a run got wrong, against the humans or a gold coder, and why.

For one LLM or baseline run, the confusion matrix of the reference's label (rows) against the run's (columns)
on the documents the run was asked and the reference labelled: the units rule of every figure in annotator.
A document the run was asked and gave no valid answer to is its own column ("no valid answer"), never left
out; one it was never asked is out of scope. The reference is ``humans`` (the human majority: the label more
human coders gave than any other; tied documents are left out and counted) or ``gold:NAME``.

Each cell lists its documents; a document shows its text, every human code, the run's label with its
rationale and probability where stored, and the labels other runs gave it. A lead adds a memo and tags
(`REVIEW_TAGS`); the note is stored with the run, the codebook version and the labels at that moment, and
`annotator review export` writes all notes as CSV. These pages are for leads only: a coder never sees them.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from sqlmodel import Session

from annotator.errors import InputError, arg
from annotator.project import Project
from annotator.services.export.files import write_text
from annotator.services.results import Result
from annotator.services.workbench.accounts import SignedIn
from annotator.store import review as rows
from annotator.store.models import REVIEW_TAGS, ReviewNote, utcnow

TAGS = REVIEW_TAGS  # the tags a lead may give a document
NO_ANSWER = "(no valid answer)"
MAX_MEMO = 4000
SNIPPET = 160


class DocRow(TypedDict):
    document: str
    snippet: str  # the text's start
    truth: str
    label: str  # the run's label, or NO_ANSWER
    tags: list[str]  # the review note's tags, if any


@dataclass(frozen=True)
class Disagreements(Result):
    run_id: int
    run: str  # the model, or the baseline's coder
    kind: str
    codebook: str
    reference: str  # "humans" or "gold:NAME"
    truths: list[str]  # row labels
    labels: list[str]  # column labels (the last is NO_ANSWER)
    counts: list[list[int]]  # counts[i][j]: the reference said truths[i], the run labels[j]
    n_units: int  # documents the run was asked that the reference labelled
    n_asked: int  # documents the run was asked
    n_tied: int  # asked documents left out: the humans tied
    n_agree: int
    cells: dict[str, list[DocRow]] = field(default_factory=dict)  # "truth|label" -> its documents


@dataclass(frozen=True)
class DocumentReview(Result):
    run_id: int
    run: str
    document: str
    text: str
    reference: str
    truth: str | None  # the reference's label (None: tied or not labelled)
    human_codes: dict[str, str]  # human coder -> label
    gold_codes: dict[str, str]  # gold coder -> label
    label: str | None  # the run's (None: no valid answer)
    status: str | None  # the answer's status (ok, invalid, error), None when the run has no answer
    rationale: str | None
    probability: float | None
    other_runs: list[tuple[int, str, str | None]]  # (run id, model or coder, label)
    tags: list[str]
    memo: str | None


def _reference(session: Session, codebook: str, reference: str) -> tuple[dict[int, str], set[int]]:
    """Document id -> the reference's label, and the documents the humans tied on."""
    if reference == "humans":
        codes = rows.coder_codes(session, codebook, ("human",))
        out, tied = {}, set()
        for doc, by in codes.items():
            top = Counter(by.values()).most_common()
            if len(top) > 1 and top[0][1] == top[1][1]:
                tied.add(doc)
                continue
            out[doc] = top[0][0]
        return out, tied
    if reference.startswith("gold:"):
        name = reference[5:]
        codes = rows.coder_codes(session, codebook, ("gold",))
        found = {doc: by[name] for doc, by in codes.items() if name in by}
        if not found:
            raise InputError(
                f"{arg('reference', reference)}: gold coder {name!r} has no codes for codebook {codebook}"
            )
        return found, set()
    raise InputError(f"{arg('reference', reference)}: use humans or gold:NAME")


def _run(session: Session, run_id: int) -> rows.RunRow:
    run = rows.run_row(session, run_id)
    if run is None or run.kind not in ("llm", "baseline"):
        raise InputError(
            f"{arg('run_id', run_id)}: no LLM or baseline run has that id (`annotator runs` lists them)"
        )
    return run


def disagreements(project: Project, run_id: int, reference: str = "humans") -> Disagreements:
    """The run's confusion matrix against ``reference`` with each cell's documents (see the module docstring)."""
    with project.transaction() as session:
        run = _run(session, run_id)
        truth, tied = _reference(session, run.codebook, reference)
        asked, answers = rows.answers(session, run_id)
        units = sorted(d for d in asked if d in truth)
        docs = rows.documents(session, set(units))
        tags = {n.document_id: list(n.tags) for n in rows.notes(session, run_id)}
    truths = sorted({truth[d] for d in units})
    given = sorted({a.label for d in units if (a := answers.get(d)) is not None and a.label is not None})
    labels = [*sorted(set(truths) | set(given)), NO_ANSWER]
    counts = [[0] * len(labels) for _ in truths]
    cells: dict[str, list[DocRow]] = {}
    agree = 0
    for d in units:
        answer = answers.get(d)
        said = answer.label if answer is not None and answer.label is not None else NO_ANSWER
        counts[truths.index(truth[d])][labels.index(said)] += 1
        agree += said == truth[d]
        text = docs[d].text
        cells.setdefault(f"{truth[d]}|{said}", []).append(
            {
                "document": docs[d].doc_key,
                "snippet": text if len(text) <= SNIPPET else text[: SNIPPET - 1] + "\u2026",
                "truth": truth[d],
                "label": said,
                "tags": tags.get(d, []),
            }
        )
    return Disagreements(
        run_id, run.model or run.coder, run.kind, run.codebook, reference, truths, labels, counts, len(units),
        len(asked), len(tied & asked), agree, cells,
    )  # fmt: skip


def document_review(
    project: Project, run_id: int, document: str, reference: str = "humans"
) -> DocumentReview:
    with project.transaction() as session:
        run = _run(session, run_id)
        doc = rows.document_by_key(session, document)
        if doc is None or doc.id is None:
            raise InputError(f"{arg('document', document)}: no such document")
        truth, _ = _reference(session, run.codebook, reference)
        asked, answers = rows.answers(session, run_id)
        if doc.id not in asked:
            raise InputError(f"{arg('document', document)}: run {run_id} was not asked this document")
        humans = rows.coder_codes(session, run.codebook, ("human",)).get(doc.id, {})
        gold = rows.coder_codes(session, run.codebook, ("gold",)).get(doc.id, {})
        others = rows.other_runs(session, doc.id, run.codebook, run_id)
        found = rows.note(session, run_id, doc.id)
    answer = answers.get(doc.id)
    return DocumentReview(
        run_id, run.model or run.coder, doc.doc_key, doc.text, reference, truth.get(doc.id),
        dict(sorted(humans.items())), dict(sorted(gold.items())),
        None if answer is None else answer.label, None if answer is None else answer.status,
        None if answer is None else answer.rationale, None if answer is None else answer.probability,
        others, list(found.tags) if found else [], found.memo if found else None,
    )  # fmt: skip


def save_note(
    project: Project,
    who: SignedIn,
    run_id: int,
    document: str,
    reference: str,
    tags: list[str],
    memo: str | None,
) -> DocumentReview:
    """Store (or replace) the lead's note on the run's document, with the labels as they stand now."""
    if not who.lead:
        raise InputError("review notes are for leads")
    unknown = [t for t in tags if t not in REVIEW_TAGS]
    if unknown:
        raise InputError(f"{arg('tags', ', '.join(unknown))}: use any of {', '.join(REVIEW_TAGS)}")
    seen = document_review(project, run_id, document, reference)
    with project.transaction() as session:
        run = _run(session, run_id)
        doc = rows.document_by_key(session, document)
        assert doc is not None and doc.id is not None
        found = rows.note(session, run_id, doc.id) or ReviewNote(
            run_id=run_id, document_id=doc.id, reference=reference
        )
        found.codebook_id, found.author_id, found.reference = run.codebook_id, who.coder_id, reference
        found.truth, found.label = seen.truth, seen.label
        found.tags = [t for t in REVIEW_TAGS if t in tags]
        found.memo = (memo or "").strip()[:MAX_MEMO] or None
        found.updated_at = utcnow()
        session.add(found)
    return document_review(project, run_id, document, reference)


def models(project: Project) -> list[rows.RunRow]:
    """The runs a lead can review (LLM and baseline, not archived), newest first."""
    with project.transaction() as session:
        return rows.model_runs(session)


NOTE_COLUMNS = ["run_id", "model", "codebook", "codebook_version", "document", "reference", "truth", "label",
                "tags", "memo", "author", "updated_at"]  # fmt: skip


def note_rows(project: Project) -> list[dict[str, object]]:
    """Every review note, as `review export` writes it."""
    with project.transaction() as session:
        found = rows.notes(session)
        docs = rows.documents(session, {n.document_id for n in found})
        authors = rows.coder_names(session, {n.author_id for n in found if n.author_id is not None})
        runs = {n.run_id: rows.run_row(session, n.run_id) for n in found}
        versions = rows.codebook_versions(
            session, {n.codebook_id for n in found if n.codebook_id is not None}
        )
    out = []
    for n in found:
        run = runs[n.run_id]
        out.append(
            {
                "run_id": n.run_id,
                "model": (run.model or run.coder) if run else "",
                "codebook": run.codebook if run else "",
                "codebook_version": versions.get(n.codebook_id or -1, ""),
                "document": docs[n.document_id].doc_key,
                "reference": n.reference,
                "truth": n.truth or "",
                "label": n.label or NO_ANSWER,
                "tags": "; ".join(n.tags),
                "memo": n.memo or "",
                "author": authors.get(n.author_id or -1, ""),
                "updated_at": n.updated_at.isoformat(timespec="seconds"),
            }
        )
    return out


def export_notes(project: Project, out: str | Path, overwrite: bool = False) -> int:
    """Write every review note to ``out`` (CSV, UTF-8); returns how many."""
    path = Path(out)
    if path.suffix.lower() != ".csv":
        raise InputError(f"{arg('out', str(path))}: review notes are written as CSV; name a .csv file")
    found = note_rows(project)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=NOTE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(found)
    write_text(path, buffer.getvalue(), overwrite)
    return len(found)


class TagCount(TypedDict):
    tag: str
    n: int


class PairCount(TypedDict):
    truth: str
    label: str
    n: int
    tags: dict[str, int]


@dataclass(frozen=True)
class NoteSummary(Result):
    n_notes: int
    by_tag: list[TagCount]
    by_pair: list[PairCount]  # (reference label, run label) with the tags given to it


def note_summary(project: Project) -> NoteSummary:
    found = note_rows(project)
    tags = Counter(t for r in found for t in str(r["tags"]).split("; ") if t)
    pairs: dict[tuple[str, str], Counter[str]] = {}
    sizes: Counter[tuple[str, str]] = Counter()
    for r in found:
        key = (str(r["truth"]), str(r["label"]))
        sizes[key] += 1
        pairs.setdefault(key, Counter()).update(t for t in str(r["tags"]).split("; ") if t)
    return NoteSummary(
        len(found),
        [{"tag": t, "n": tags[t]} for t in REVIEW_TAGS if tags[t]],
        [{"truth": k[0], "label": k[1], "n": n, "tags": dict(pairs[k])} for k, n in sizes.most_common()],
    )


def references(project: Project, run_id: int) -> list[str]:
    """What the run can be reviewed against: ``humans``, then ``gold:NAME`` for each gold coder of its codebook."""
    with project.transaction() as session:
        run = _run(session, run_id)
        golds = {name for by in rows.coder_codes(session, run.codebook, ("gold",)).values() for name in by}
    return ["humans", *(f"gold:{n}" for n in sorted(golds))]
