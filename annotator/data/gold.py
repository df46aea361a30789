"""`annotator gold build`: a gold coder made from human coders' codes.

Rule ``majority``: a document's gold code is the label that more than half of the named coders who coded it
gave (a strict majority). Documents where the most frequent label is shared (ties) or holds no more than half
of the codes (no majority) are left out and counted, as are documents coded by fewer than two of the coders.
The gold codes are written as the import run (kind gold) of a new coder, in one transaction.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from annotator.data.corpus import NewCode, add_codes
from annotator.errors import InputError, Listed, arg
from annotator.project import Project
from annotator.store.codes import SPLITS, codes_query
from annotator.store.models import Annotation, CodebookVersion, Coder, Document, Run, utcnow
from annotator.store.registry import stored_codebook

RULES = ("majority",)


def build_gold(
    project: Project,
    name: str,
    from_coders: list[str],
    rule: str = "majority",
    split: str | None = None,
    codebook: str | None = None,
) -> dict[str, Any]:
    """Create gold coder ``name`` from ``from_coders`` (see the module docstring). Returns the counts."""
    name, coders = _check_request(name, from_coders, rule, split)
    with project.transaction() as session:
        _check_coders(session, name, coders)
        found = _human_codes(session, coders, split, codebook)
        book_name = found[0][4]
        version = max(r[5] for r in found)
        vote = _majority_vote(found, coders)
        if not vote.codes:
            raise InputError(
                f"no document has a strict majority label among {', '.join(coders)} "
                f"({len(vote.ties)} ties, {len(vote.no_majority)} without a majority, "
                f"{len(vote.too_few)} coded by fewer than two)"
            )
        cb = stored_codebook(session, book_name, version)
        cb_row = session.exec(
            select(CodebookVersion).where(
                col(CodebookVersion.name) == book_name, col(CodebookVersion.version) == version
            )
        ).one()
        source = {
            "rule": rule,
            "from": coders,
            "split": split,
            "at": utcnow().isoformat(timespec="seconds"),
        }
        added, _ = add_codes(session, cb, cb_row, name, "gold", vote.codes, source)
        run_id = session.exec(
            select(Run.id).join(Coder, col(Coder.id) == col(Run.coder_id)).where(col(Coder.name) == name)
        ).one()
    return {
        "name": name,
        "rule": rule,
        "from": coders,
        "split": split,
        "codebook": cb.ref,
        "run_id": run_id,
        "n_documents": vote.n_documents,
        "n_gold": added,
        "n_ties": len(vote.ties),
        "n_no_majority": len(vote.no_majority),
        "n_too_few": len(vote.too_few),
        "ties": vote.ties,
        "no_majority": vote.no_majority,
    }


def _check_request(name: str, from_coders: list[str], rule: str, split: str | None) -> tuple[str, list[str]]:
    """The gold coder's name and the coders it is made from (deduplicated), once the options are checked."""
    name = name.strip()
    if not name:
        raise InputError("give the gold coder a name, e.g. `annotator gold build majority --from a,b,c`")
    if rule not in RULES:
        raise InputError(f"{arg('rule', rule)}: use {', '.join(RULES)}")
    coders = list(dict.fromkeys(c.strip() for c in from_coders if c.strip()))
    if len(coders) < 2:
        raise InputError(
            f"{arg('from_coders', Listed(from_coders))}: name at least two human coders, e.g. "
            f"{arg('from_coders', Listed(['alice', 'bob', 'carol']))}"
        )
    if split is not None and split not in SPLITS:
        raise InputError(f"{arg('split', split)}: use dev, test or all")
    return name, coders


def _check_coders(session: Session, name: str, coders: list[str]) -> None:
    """The gold coder's name is free and every coder it is made from is a human coder."""
    if session.exec(select(Coder).where(col(Coder.name) == name)).first() is not None:
        raise InputError(f"a coder named {name!r} already exists; choose another name for the gold coder")
    rows = {c.name: c for c in session.exec(select(Coder).where(col(Coder.name).in_(coders))).all()}
    humans = sorted(session.exec(select(Coder.name).where(col(Coder.kind) == "human")).all())
    bad = [c for c in coders if c not in rows or rows[c].kind != "human"]
    if bad:
        raise InputError(
            f"{arg('from_coders', Listed(coders))}: not human coders: {', '.join(bad)} "
            f"(human coders: {', '.join(humans) or 'none'})"
        )


def _human_codes(session: Session, coders: list[str], split: str | None, codebook: str | None) -> list[Any]:
    """The coders' valid codes (first repeat) as (coder, document id, label, run id, codebook name, codebook
    version, document key), oldest run first; all of one codebook, else an error."""
    query = (
        codes_query(
            col(Coder.name),
            col(Annotation.document_id),
            col(Annotation.label),
            col(Run.id),
            col(CodebookVersion.name),
            col(CodebookVersion.version),
            col(Document.doc_key),
        )
        .where(
            col(Coder.name).in_(coders),
            col(Annotation.status) == "ok",
            col(Annotation.label).is_not(None),
            col(Annotation.repeat) == 0,
        )
        .order_by(col(Run.id))
    )
    if codebook is not None:
        query = query.where(col(CodebookVersion.name) == codebook)
    if split not in (None, "all"):
        query = query.where(col(Document.split) == split)
    found = list(session.execute(query).all())
    books = sorted({r[4] for r in found})
    if len(books) > 1:
        raise InputError(
            f"the coders coded several codebooks ({', '.join(books)}): say which, e.g. {arg('codebook', books[0])}"
        )
    if not found:
        raise InputError(f"no codes from {', '.join(coders)}" + (f" on split {split!r}" if split else ""))
    return found


@dataclass
class _Vote:
    """The outcome of the majority rule: the gold codes and the document keys left out, by reason."""

    n_documents: int  # documents any of the coders coded
    codes: list[NewCode] = field(default_factory=list)
    ties: list[str] = field(default_factory=list)
    no_majority: list[str] = field(default_factory=list)
    too_few: list[str] = field(default_factory=list)


def _majority_vote(found: list[Any], coders: list[str]) -> _Vote:
    """Each document's strict majority label among the coders' latest codes (see the module docstring)."""
    cells: dict[tuple[str, int], str] = {}  # (coder, doc) -> label of its latest import run
    keys: dict[int, str] = {}
    for coder, doc_id, label, _, _, _, key in found:
        cells[(coder, doc_id)] = label
        keys[doc_id] = key
    by_doc: dict[int, list[str]] = {}
    for (_, doc_id), label in cells.items():
        by_doc.setdefault(doc_id, []).append(label)
    vote = _Vote(n_documents=len(by_doc))
    where = f"majority of {', '.join(coders)}"
    for doc_id in sorted(by_doc):
        labels = by_doc[doc_id]
        if len(labels) < 2:
            vote.too_few.append(keys[doc_id])
            continue
        counts = Counter(labels).most_common()
        top = counts[0][1]
        if len(counts) > 1 and counts[1][1] == top:
            vote.ties.append(keys[doc_id])
        elif top * 2 <= len(labels):
            vote.no_majority.append(keys[doc_id])
        else:
            vote.codes.append(NewCode(key=keys[doc_id], label=counts[0][0], raw=None, where=where))
    return vote
