"""What a baseline reads from the project: the documents it labels (a split, or those ``--coded-by`` coders
coded) and, for a family that trains, the gold coder's labels on the dev split."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from annotator.codebook import Codebook
from annotator.data.selection import CodedBy, select_coded
from annotator.data.selection import resolve as resolve_coded_by
from annotator.errors import InputError, arg
from annotator.project import Project
from annotator.services.baseline_families import BaselineRequest, Family
from annotator.store.models import Annotation, Coder, Document, Run


@dataclass
class BaselineInputs:
    """What a baseline reads from the project: its target documents and, to train, the gold-labelled dev."""

    targets: list[tuple[int, str]]  # (id, text) of the documents to label
    train: list[tuple[int, str, str]]  # (id, text, gold label) of the training documents
    gold_name: str | None
    coded_by: CodedBy | None


def _gold_coder(session: Session, name: str | None) -> Coder:
    if name is not None:
        coder = session.exec(select(Coder).where(col(Coder.name) == name)).first()
        if coder is None or coder.kind not in ("gold", "human"):
            gold_names = session.exec(select(Coder.name).where(col(Coder.kind) == "gold")).all()
            why = "no coder" if coder is None else f"a {coder.kind} coder, not gold or human"
            raise InputError(
                f"{arg('gold', name)}: {why} (gold coders: {', '.join(gold_names) or 'none'}); the training "
                "labels must come from a gold or human coder"
            )
        return coder
    golds = list(session.exec(select(Coder).where(col(Coder.kind) == "gold")).all())
    if len(golds) != 1:
        names = ", ".join(c.name for c in golds) or (
            "none: import one with `annotator import codes FILE --coder NAME --gold` or `annotator gold build`"
        )
        raise InputError(f"say whose labels to train on with {arg('gold', 'NAME')} (gold coders: {names})")
    return golds[0]


def _gold_labels(session: Session, coder: Coder, codebook: Codebook) -> dict[int, str]:
    rows = session.exec(
        select(Annotation.document_id, Annotation.label)
        .join(Run, col(Run.id) == Annotation.run_id)
        .where(col(Run.coder_id) == coder.id, col(Annotation.status) == "ok", col(Annotation.repeat) == 0)
        .order_by(col(Annotation.run_id))
    ).all()
    allowed = set(codebook.allowed_labels)
    return {doc: label for doc, label in rows if label in allowed}  # the latest import wins


def _documents(
    session: Session, split: str, coded_by: CodedBy | None = None, codebook: str | None = None
) -> list[tuple[int, str]]:
    """(id, text) of the split's documents in id order; only those ``coded_by`` coded, when given."""
    query = select(Document.id, Document.text).order_by(col(Document.id))
    if split != "all":
        query = query.where(col(Document.split) == split)
    rows = [(int(i or 0), t) for i, t in session.exec(query).all()]
    if coded_by is None or not rows:
        return rows
    where = f"the {split} split" if split != "all" else "the project"
    _, chosen = select_coded(
        session, coded_by.names, coded_by.mode, [d for d, _ in rows], codebook=codebook, where=where
    )
    return [(d, t) for d, t in rows if d in chosen]


def _coded_by(session: Session, req: BaselineRequest) -> CodedBy | None:
    """The request's --coded-by, checked (unknown names are refused before anything runs)."""
    if req.coded_by is None:
        if req.coded_by_all:
            raise InputError(f"{arg('coded_by_all')} needs {arg('coded_by', 'NAMES')}")
        return None
    return resolve_coded_by(session, req.coded_by, "all" if req.coded_by_all else "any")[0]


def _training_set(
    session: Session, req: BaselineRequest, codebook: Codebook
) -> tuple[str, list[tuple[int, str, str]]]:
    """The gold coder's name and its labelled dev documents; refused with fewer than two labels."""
    gold = _gold_coder(session, req.gold)
    labels = _gold_labels(session, gold, codebook)
    train = [(d, t, labels[d]) for d, t in _documents(session, "dev") if d in labels]
    classes = sorted({label for _, _, label in train})
    if len(classes) < 2:
        raise InputError(
            f"gold coder {gold.name} labels {len(train)} dev documents with {len(classes)} label(s): training "
            "needs at least two labels with examples; code more dev documents"
        )
    return gold.name, train


def load_inputs(project: Project, req: BaselineRequest, family: Family, codebook: Codebook) -> BaselineInputs:
    with project.transaction() as session:
        if session.exec(select(Document.id).where(col(Document.split).is_not(None)).limit(1)).first() is None:
            raise InputError("no document is in a split yet: run `annotator split` first")
        coded_by = _coded_by(session, req)
        if not _documents(session, req.split):
            raise InputError(f"the {req.split} split has no documents")
        targets = _documents(session, req.split, coded_by, codebook.name)
        gold_name, train = _training_set(session, req, codebook) if family.needs_training else (None, [])
    return BaselineInputs(targets, train, gold_name, coded_by)
