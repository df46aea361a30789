"""What `annotator validate` and `annotator compare` score: a gold coder's codes on a split and, for each LLM
or baseline run, the gold items it was asked and its first answer to each (no figures here).

A run's asked set is its stored selection (`annotator.store.asked`); gold items outside it are out of the
run's scope, never errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from annotator.codebook import Codebook
from annotator.errors import InputError, Listed, arg
from annotator.store.asked import asked_sets
from annotator.store.codes import RUN_KINDS, SPLITS
from annotator.store.models import (
    Annotation,
    CodebookVersion,
    Coder,
    Document,
    PromptVersion,
    Run,
    as_utc,
)
from annotator.store.registry import stored_codebook

GOLD_KINDS = ("gold", "human")


@dataclass
class RunInfo:
    """One run to score: what it is, when it started, when its prompt was frozen, what it was asked, and its
    answers."""

    id: int
    kind: str
    model: str | None
    prompt: str | None
    started_at: datetime
    frozen_at: datetime | None
    # document id -> label, or None for an invalid/error answer (asked gold items only)
    answers: dict[int, str | None] = field(default_factory=dict)
    # the gold items (of the split) the run was asked: the only items its figures are computed on
    asked: set[int] = field(default_factory=set)
    # every document the run was asked, gold or not, on any split
    selected: set[int] = field(default_factory=set)

    @property
    def n_asked(self) -> int:
        return len(self.selected)

    @classmethod
    def of(cls, run: Run, prompt: PromptVersion | None) -> RunInfo:
        """A stored run (and its prompt version, if any), with no answers loaded yet."""
        assert run.id is not None
        return cls(
            id=run.id,
            kind=run.kind,
            model=run.model,
            prompt=prompt.ref if prompt else None,
            started_at=as_utc(run.started_at) or run.started_at,
            frozen_at=as_utc(prompt.frozen_at) if prompt else None,
        )


def utc_text(t: datetime | None) -> str | None:
    return None if t is None else f"{t:%Y-%m-%d %H:%M:%S} UTC"


def _codebook_name(session: Session, gold_id: int, codebook: str | None) -> str:
    if codebook is not None:
        return codebook
    names = sorted(
        set(
            session.execute(
                sa_select(col(CodebookVersion.name))
                .join(Run, col(Run.codebook_id) == col(CodebookVersion.id))
                .where(col(Run.coder_id) == gold_id)
            )
            .scalars()
            .all()
        )
    )
    if len(names) == 1:
        return names[0]
    raise InputError(
        f"say which codebook with {arg('codebook', 'NAME')} (the gold coder's codebooks: {', '.join(names)})"
    )


def default_gold(session: Session) -> str:
    """The project's only gold coder, the one ``--gold`` means when it is not given.

    Refused (InputError naming the candidates and what to do) when there is no gold coder or several."""
    names = sorted(session.exec(select(Coder.name).where(col(Coder.kind) == "gold")).all())
    if len(names) == 1:
        return names[0]
    if names:
        raise InputError(
            f"{len(names)} gold coders ({', '.join(names)}): say which with {arg('gold', 'NAME')}, "
            f"e.g. {arg('gold', names[0])}"
        )
    humans = sorted(session.exec(select(Coder.name).where(col(Coder.kind) == "human")).all())
    also = (
        f", or name a human coder with {arg('gold', 'NAME')} (human coders: {', '.join(humans)})"
        if humans
        else ""
    )
    raise InputError(
        "no gold coder in this project: import one (`annotator import codes FILE --coder NAME --gold`) "
        f"or build one from human coders (`annotator gold build NAME --from a,b`){also}"
    )


def _gold_coder(session: Session, gold: str) -> Coder:
    coder = session.exec(select(Coder).where(col(Coder.name) == gold.strip())).first()
    if coder is None or coder.kind not in GOLD_KINDS:
        known = sorted(session.exec(select(Coder.name).where(col(Coder.kind) == "gold")).all())
        why = "no coder" if coder is None else f"{coder.kind} coder"
        raise InputError(
            f"{arg('gold', gold)}: {why} of that name is a gold coder (gold coders: {', '.join(known) or 'none'}); "
            "import one (`annotator import codes FILE --coder NAME --gold`) or build one "
            "(`annotator gold build NAME --from a,b`)"
        )
    return coder


def load_gold_and_runs(
    session: Session, gold: str, split: str, runs: list[int] | None, codebook: str | None
) -> dict[str, Any]:
    """The gold coder's codes on ``split``, the codebook's labels and the repeat-0 answers of the runs.

    ``runs``: these run ids (refused unless LLM or baseline runs of the codebook), or every such run when
    None. Returns a dict: gold, gold_kind, codebook, codebook_versions, labels, uncertain, gold_codes
    (document id -> label), doc_ids, metas (document id -> metadata) and runs (a list of ``RunInfo``, each
    with its asked gold items and its answers on them only).
    """
    if split not in SPLITS:
        raise InputError(f"{arg('split', split)}: use dev, test or all")
    coder = _gold_coder(session, gold)
    assert coder.id is not None
    name = _codebook_name(session, coder.id, codebook)
    versions = sorted(
        session.exec(select(CodebookVersion).where(col(CodebookVersion.name) == name)).all(),
        key=lambda v: v.version,
    )
    if not versions:
        known = sorted(set(session.exec(select(CodebookVersion.name)).all()))
        raise InputError(
            f"no codes under codebook {name!r} (codebooks with codes: {', '.join(known) or 'none'})"
        )
    latest, labels = single_label_versions(session, versions, "validate needs one label per text")
    uncertain = latest.uncertain.name if latest.uncertain else None
    version_ids = [v.id for v in versions]

    # gold codes (the latest import run per document)
    q = (
        sa_select(col(Annotation.document_id), col(Annotation.label), col(Run.id))
        .join(Run, col(Run.id) == col(Annotation.run_id))
        .join(Document, col(Document.id) == col(Annotation.document_id))
        .where(
            col(Run.coder_id) == coder.id,
            col(Run.codebook_id).in_(version_ids),
            col(Run.archived_at).is_(None),  # an archived import is not gold
            col(Annotation.status) == "ok",
            col(Annotation.label).is_not(None),
            col(Annotation.repeat) == 0,
        )
        .order_by(col(Run.id))
    )
    if split != "all":
        q = q.where(col(Document.split) == split)
    gold_codes: dict[int, str] = {}
    for doc_id, label, _ in session.execute(q).all():
        gold_codes[doc_id] = label
    if not gold_codes:
        raise InputError(
            f"gold coder {coder.name!r} has no codes of codebook {name!r} on split {split!r}"
            + (f"; use {arg('split', 'all')} or assign splits (`annotator split`)" if split != "all" else "")
        )

    # runs
    rq = select(Run).where(col(Run.codebook_id).in_(version_ids), col(Run.kind).in_(RUN_KINDS))
    if runs:
        found = {r.id: r for r in session.exec(select(Run).where(col(Run.id).in_(runs))).all()}
        bad = [
            f"{i} ({'no such run' if i not in found else 'not an LLM or baseline run of ' + repr(name)})"
            for i in runs
            if i not in found or found[i].kind not in RUN_KINDS or found[i].codebook_id not in version_ids
        ]
        if bad:
            raise InputError(
                f"{arg('runs', Listed(runs))}: {', '.join(bad)}; `annotator runs` lists the runs"
            )
        rq = rq.where(col(Run.id).in_(runs))
    else:  # archived runs (`annotator runs archive`) only when named
        rq = rq.where(col(Run.archived_at).is_(None))
    run_rows = sorted(session.exec(rq).all(), key=lambda r: r.id or 0)
    if not run_rows:
        raise InputError(f"no LLM or baseline runs of codebook {name!r}; label with `annotator run` first")
    asked = asked_sets(session, [r.id for r in run_rows if r.id is not None])
    infos: list[RunInfo] = []
    for r in run_rows:
        assert r.id is not None
        prompt = session.get(PromptVersion, r.prompt_id) if r.prompt_id is not None else None
        info = RunInfo.of(r, prompt)
        info.selected = asked[r.id]
        info.asked = {d for d in asked[r.id] if d in gold_codes}
        aq = sa_select(col(Annotation.document_id), col(Annotation.label), col(Annotation.status)).where(
            col(Annotation.run_id) == r.id, col(Annotation.repeat) == 0
        )
        for doc_id, label, status in session.execute(aq).all():
            if doc_id in info.asked:
                info.answers[doc_id] = label if status == "ok" and label is not None else None
        infos.append(info)

    doc_ids = sorted(gold_codes)
    metas = dict(
        session.execute(
            sa_select(col(Document.id), col(Document.meta)).where(col(Document.id).in_(doc_ids))
        ).all()
    )
    gold_labels = set(gold_codes.values())
    unknown = sorted(gold_labels - set(labels) - {uncertain})
    if unknown:
        raise InputError(
            f"gold coder {coder.name!r} has labels no version of codebook {name!r} defines: {unknown}"
        )
    return {
        "gold": coder.name,
        "gold_kind": coder.kind,
        "codebook": name,
        "codebook_versions": [v.version for v in versions],
        "labels": labels,
        "uncertain": uncertain,
        "gold_codes": gold_codes,
        "doc_ids": doc_ids,
        "metas": {d: (m or {}) for d, m in metas.items()},
        "runs": infos,
    }


def single_label_versions(
    session: Session, versions: list[CodebookVersion], why: str
) -> tuple[Codebook, list[str]]:
    """A codebook's latest version (``versions`` oldest first) and the labels every version defines, the
    latest version's first; a multilabel codebook is refused with ``why``."""
    books = [stored_codebook(session, v.name, v.version) for v in versions]
    latest = books[-1]
    if latest.kind == "multilabel":
        raise InputError(f"codebook {latest.ref} is multilabel: {why}")
    labels: list[str] = []
    for book in reversed(books):
        labels += [n for n in book.label_names if n not in labels]
    return latest, labels


def meta_columns(session: Session) -> list[str]:
    cols: set[str] = set()
    for meta in session.execute(sa_select(col(Document.meta))).scalars().all():
        cols.update((meta or {}).keys())
    return sorted(cols)


# -- figures ----------------------------------------------------------------------------------------------
