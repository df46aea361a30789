"""Adjudication: human codes into a gold coder, by a lead, with provenance.

`open_adjudication` names the gold coder (default ``adjudicated``), the human coders it is made from and
optionally an LLM run. Its items are the documents two or more of those coders coded (on a split, if given).
A document on which they all agree passes through at once (``how: unanimous``); one on which they disagree
waits for a lead, who picks the final label with a note (``how: adjudicated``, with who and when). With a run,
a unanimous document whose run label differs also waits for a lead: the model may have seen something the
coders missed. Each decision is one transaction that writes the gold label as an ordinary annotation of the
gold coder's run (so `validate --gold adjudicated` reads it like an imported gold) and its `Adjudication`
row (how, who, the note, each coder's label at the time). Opening again adds what was coded since.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TypedDict

from sqlmodel import Session, col, select

from annotator.data.codes import get_or_create_coder
from annotator.data.selection import parse_names
from annotator.errors import InputError, arg
from annotator.project import Project
from annotator.services.results import Result
from annotator.services.workbench.accounts import SignedIn
from annotator.store import coding, review
from annotator.store.models import Adjudicated, Adjudication, Annotation, Run, utcnow
from annotator.store.registry import project_codebook, register_codebook

DEFAULT_GOLD = "adjudicated"
MAX_NOTE = 2000


class Pending(TypedDict):
    document: str
    text: str
    codes: dict[str, str]  # coder -> label
    run_label: str | None  # the run's label (when a run was named)
    why: str  # "coders disagree" or "the run disagrees with the coders"


@dataclass(frozen=True)
class AdjudicationState(Result):
    gold: str
    codebook: str  # name@version the gold codes are stored under
    coders: list[str]
    run_id: int | None
    split: str | None
    items: int  # documents two or more of the coders coded
    unanimous: int  # passed through
    adjudicated: int  # decided by a lead
    pending: list[Pending]  # waiting for a lead, in document order


@dataclass(frozen=True)
class _Setup:
    gold_id: int  # the gold coder
    gold_run: int  # its run (the gold labels are its annotations)
    coders: list[str]
    run_id: int | None  # the LLM run whose disagreements also wait for a lead
    split: str | None
    codebook: str


def _setup(session: Session, gold: str) -> _Setup:
    coder = coding.coder_by_name(session, gold)
    if coder is None or coder.kind != "gold" or coder.id is None:
        raise InputError(
            f"{arg('gold', gold)}: no adjudication opened under that name (`annotator adjudicate`)"
        )
    for r in session.exec(select(Run).where(col(Run.coder_id) == coder.id)).all():
        spec = (r.params or {}).get("adjudication")
        if spec and r.id is not None:
            return _Setup(
                coder.id, r.id, list(spec["coders"]), spec.get("run_id"), spec.get("split"), spec["codebook"]
            )
    raise InputError(f"{arg('gold', gold)}: a gold coder that was not made by adjudication")


def _items(session: Session, book: str, coders: list[str], split: str | None) -> dict[int, dict[str, str]]:
    codes = review.coder_codes(session, book, ("human",))
    docs = review.documents(session, set(codes))
    return {
        d: {c: by[c] for c in coders if c in by}
        for d, by in codes.items()
        if sum(c in by for c in coders) >= 2 and (split is None or docs[d].split == split)
    }


def _write(session: Session, run_id: int, gold_id: int, doc_id: int, label: str, how: Adjudicated, by: int | None,
           note: str | None, codes: dict[str, str]) -> None:  # fmt: skip
    stored = review.adjudications(session, gold_id).get(doc_id)
    row = stored or Adjudication(gold_id=gold_id, document_id=doc_id, how=how, label=label)
    row.how, row.label, row.by_id, row.note, row.codes, row.decided_at = how, label, by, note, codes, utcnow()
    session.add(row)
    answer = coding.stored_label(session, run_id, doc_id)
    if answer is None:
        session.add(Annotation(run_id=run_id, document_id=doc_id, label=label, raw=label, status="ok"))
    else:
        answer.label, answer.raw = label, label
        session.add(answer)


def open_adjudication(
    project: Project,
    coders: str | list[str],
    gold: str = DEFAULT_GOLD,
    run_id: int | None = None,
    split: str | None = None,
    codebook: str | None = None,
) -> AdjudicationState:
    """Open (or refresh) adjudicated gold coder ``gold`` from ``coders``: unanimous documents pass through."""
    names = parse_names(coders)
    if len(names) < 2:
        raise InputError(f"{arg('coders', ','.join(names))}: adjudication needs two or more human coders")
    if split not in (None, "dev", "test"):
        raise InputError(f"{arg('split', split)}: use dev or test (or leave it out for every document)")
    cb = project_codebook(project, codebook)
    with project.transaction() as session:
        for name in names:
            found = coding.coder_by_name(session, name)
            if found is None or found.kind != "human":
                raise InputError(f"{arg('coders', ','.join(names))}: {name!r} is not a human coder")
        if run_id is not None:
            model = review.run_row(session, run_id)
            if model is None or model.kind not in ("llm", "baseline") or model.codebook != cb.name:
                raise InputError(
                    f"{arg('run_id', run_id)}: no LLM or baseline run of codebook {cb.name} has that id"
                )
        existing = coding.coder_by_name(session, gold)
        if existing is not None and existing.kind != "gold":
            raise InputError(f"{arg('gold', gold)}: a {existing.kind} coder has that name; choose another")
        coder = get_or_create_coder(session, gold, "gold")
        assert coder.id is not None
        row = register_codebook(session, cb, str(project.codebook_path(cb.name)))
        run = coding.human_run(session, coder.id, row, kind="gold")
        run.params = {
            **(run.params or {}),
            "adjudication": {"coders": names, "run_id": run_id, "split": split, "codebook": cb.name},
            "sources": [{"file": "adjudication", "from": names}],
        }
        session.add(run)
        session.flush()
        _pass_unanimous(session, run, coder.id, cb.name, names, run_id, split)
    return state(project, gold)


def _pass_unanimous(session: Session, run: Run, gold_id: int, book: str, names: list[str], run_id: int | None,
                    split: str | None) -> None:  # fmt: skip
    decided = review.adjudications(session, gold_id)
    model = review.answers(session, run_id)[1] if run_id is not None else {}
    for doc, codes in _items(session, book, names, split).items():
        labels = set(codes.values())
        if doc in decided or len(labels) != 1:
            continue
        label = labels.pop()
        answer = model.get(doc)
        if run_id is not None and answer is not None and answer.label != label:
            continue  # the run disagrees: a lead looks at it
        assert run.id is not None
        _write(session, run.id, gold_id, doc, label, "unanimous", None, None, codes)


def opened(project: Project, gold: str = DEFAULT_GOLD) -> bool:
    """Whether an adjudication ``gold`` exists (`open_adjudication` made it)."""
    with project.transaction() as session:
        found = coding.coder_by_name(session, gold)
        return found is not None and found.kind == "gold"


def candidates(project: Project, codebook: str | None = None) -> dict[str, int]:
    """The human coders of the codebook -> how many documents each coded (what an adjudication is made from)."""
    cb = project_codebook(project, codebook)
    with project.transaction() as session:
        codes = review.coder_codes(session, cb.name, ("human",))
    return dict(sorted(Counter(name for by in codes.values() for name in by).items()))


def state(project: Project, gold: str = DEFAULT_GOLD) -> AdjudicationState:
    """Where adjudication ``gold`` stands: the counts and the documents waiting for a lead."""
    with project.transaction() as session:
        setup = _setup(session, gold)
        items = _items(session, setup.codebook, setup.coders, setup.split)
        decided = review.adjudications(session, setup.gold_id)
        model = review.answers(session, setup.run_id)[1] if setup.run_id is not None else {}
        docs = review.documents(session, set(items))
        cb_ref = f"{setup.codebook}@{_version(session, session.get(Run, setup.gold_run))}"
    pending: list[Pending] = []
    for doc, codes in sorted(items.items(), key=lambda kv: docs[kv[0]].doc_key):
        if doc in decided:
            continue
        answer = model.get(doc)
        why = "coders disagree" if len(set(codes.values())) > 1 else "the run disagrees with the coders"
        pending.append({"document": docs[doc].doc_key, "text": docs[doc].text, "codes": dict(sorted(codes.items())),
                        "run_label": answer.label if answer is not None else None, "why": why})  # fmt: skip
    how = Counter(a.how for a in decided.values())
    return AdjudicationState(
        gold, cb_ref, setup.coders, setup.run_id, setup.split, len(items), how["unanimous"], how["adjudicated"],
        pending,
    )  # fmt: skip


def _version(session: Session, run: Run | None) -> int:
    from annotator.store.models import CodebookVersion

    row = session.get(CodebookVersion, run.codebook_id) if run is not None else None
    return row.version if row is not None else 0


def decide(project: Project, who: SignedIn, document: str, label: str, note: str | None = None,
           gold: str = DEFAULT_GOLD) -> AdjudicationState:  # fmt: skip
    """The lead's final label for ``document`` (one waiting for a decision, or a decision to revise)."""
    if not who.lead:
        raise InputError("adjudication is for leads")
    with project.transaction() as session:
        setup = _setup(session, gold)
        cb = project_codebook(project, setup.codebook)
        value = cb.normalize_label(label)
        if value is None:
            raise InputError(
                f"{arg('label', label)}: not a label of codebook {cb.name} ({', '.join(cb.allowed_labels)})"
            )
        doc = review.document_by_key(session, document)
        items = _items(session, setup.codebook, setup.coders, setup.split)
        if doc is None or doc.id is None or doc.id not in items:
            raise InputError(f"{arg('document', document)}: not an item of adjudication {gold}")
        note = (note or "").strip()[:MAX_NOTE] or None
        _write(
            session,
            setup.gold_run,
            setup.gold_id,
            doc.id,
            value,
            "adjudicated",
            who.coder_id,
            note,
            items[doc.id],
        )
    return state(project, gold)
