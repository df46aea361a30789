"""What an estimate is computed from (`annotator estimate`): a run's answers on every document it was asked
(its asked set, within a split), a gold coder's codes on those documents, and their metadata.

The population is the run's asked set: the documents whose share is estimated. The LLM's answer on each is
its label, or None when it was asked and gave no valid answer (invalid or error); a document of the split the
run was never asked is not in the population. Gold codes are read on the population only (repeat 0, the
latest import, archived imports left out), as validation reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from annotator.errors import InputError, arg
from annotator.store.asked import asked_sets
from annotator.store.codes import SPLITS
from annotator.store.models import Annotation, CodebookVersion, Coder, Document, PromptVersion, Run
from annotator.store.scored import GOLD_KINDS, RUN_KINDS, _gold_coder, single_label_versions


class NotAsked(InputError):
    """The run was asked no document of the split."""


@dataclass
class EstimationData:
    run_id: int
    run_kind: str
    model: str | None
    prompt: str | None
    codebook: str
    labels: list[str]  # the codebook's labels (every version's), its uncertain label last
    gold: str
    gold_kind: str
    gold_sources: list[str]  # where the gold codes came from (import files), for the design statement
    population: list[int]  # document ids, ascending
    answers: dict[int, str | None]  # document -> the run's label (None: asked, no valid answer)
    gold_codes: dict[int, str]  # document of the population -> gold label
    metas: dict[int, dict[str, Any]] = field(default_factory=dict)
    keys: dict[int, str] = field(default_factory=dict)  # document id -> its key


def load_estimation(session: Session, run_id: int, gold: str | None, split: str) -> EstimationData:
    if split not in SPLITS:
        raise InputError(f"{arg('split', split)}: use dev, test or all")
    run = session.get(Run, run_id)
    if run is None or run.kind not in RUN_KINDS:
        what = "no such run" if run is None else f"a {run.kind} import, not an LLM or baseline run"
        raise InputError(f"{arg('run', run_id)}: {what}; `annotator runs` lists the runs")
    version = session.get(CodebookVersion, run.codebook_id) if run.codebook_id is not None else None
    if version is None:
        raise InputError(f"run {run_id} has no codebook")
    versions = session.exec(select(CodebookVersion).where(col(CodebookVersion.name) == version.name)).all()
    ordered = sorted(versions, key=lambda v: v.version)
    latest, labels = single_label_versions(session, ordered, "estimate needs one label per document")
    if latest.uncertain is not None and latest.uncertain.name not in labels:
        labels.append(latest.uncertain.name)
    coder = _gold_coder(session, gold) if gold else _only_gold(session)
    assert coder.id is not None

    asked = asked_sets(session, [run_id])[run_id]
    docs = session.execute(
        sa_select(col(Document.id), col(Document.doc_key), col(Document.split), col(Document.meta)).where(
            col(Document.id).in_(sorted(asked))
        )
    ).all()
    population = sorted(d for d, _, s, _ in docs if split == "all" or s == split)
    if not population:
        raise NotAsked(
            f"run {run_id} was asked no document of the {split} split (it was asked {len(asked)}); "
            f"use {arg('split', 'all')} or the split the run labeled"
        )
    inside = set(population)
    answers: dict[int, str | None] = dict.fromkeys(population)
    for doc_id, label, status in session.execute(
        sa_select(col(Annotation.document_id), col(Annotation.label), col(Annotation.status)).where(
            col(Annotation.run_id) == run_id, col(Annotation.repeat) == 0
        )
    ).all():
        if doc_id in inside:
            answers[doc_id] = label if status == "ok" else None
    gold_codes, sources = _gold(session, coder, version.name, inside)
    prompt = session.get(PromptVersion, run.prompt_id) if run.prompt_id is not None else None
    return EstimationData(
        run_id=run_id,
        run_kind=run.kind,
        model=run.model,
        prompt=prompt.ref if prompt else None,
        codebook=version.name,
        labels=labels,
        gold=coder.name,
        gold_kind=coder.kind,
        gold_sources=sources,
        population=population,
        answers=answers,
        gold_codes=gold_codes,
        metas={d: (m or {}) for d, _, _, m in docs if d in inside},
        keys={d: k for d, k, _, _ in docs if d in inside},
    )


def _gold(
    session: Session, coder: Coder, codebook: str, inside: set[int]
) -> tuple[dict[int, str], list[str]]:
    rows = session.execute(
        sa_select(col(Annotation.document_id), col(Annotation.label), col(Run.source))
        .join(Run, col(Run.id) == col(Annotation.run_id))
        .join(CodebookVersion, col(CodebookVersion.id) == col(Run.codebook_id))
        .where(
            col(Run.coder_id) == coder.id,
            col(CodebookVersion.name) == codebook,
            col(Run.archived_at).is_(None),
            col(Annotation.status) == "ok",
            col(Annotation.label).is_not(None),
            col(Annotation.repeat) == 0,
        )
        .order_by(col(Run.id))
    ).all()
    codes: dict[int, str] = {}
    sources: list[str] = []
    for doc_id, label, source in rows:
        if doc_id in inside:
            codes[doc_id] = label
        if source and source not in sources:
            sources.append(source)
    return codes, sources


def _only_gold(session: Session) -> Coder:
    from annotator.store.scored import default_gold

    name = default_gold(session)
    coder = session.exec(select(Coder).where(col(Coder.name) == name, col(Coder.kind).in_(GOLD_KINDS))).one()
    return coder
