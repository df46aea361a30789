"""Which documents a set of coders coded: the selection behind ``--coded-by`` (LLM runs, plans, baselines),
and the overlap a planned run will have with each human and gold coder.

Random samples of a split overlap a human coder by chance (a 30-document sample met a 200-document coder on
2-3 documents); selecting the documents the humans coded gives every comparison its full n. A coder's codes
count when they are valid (status ok, a label) and were made on the run's codebook (any version of it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session, col

from annotator.errors import InputError, Listed, arg
from annotator.store.models import Annotation, CodebookVersion, Coder, Run

GROUPS = {"humans": "human", "gold": "gold"}  # --coded-by names that stand for every coder of a kind
MODES = ("any", "all")
CHUNK = 900


@dataclass(frozen=True)
class CodedBy:
    """A resolved ``--coded-by``: the names as given (sorted, no repeats), the coders they stand for, and
    whether a document needs a code from any of them (the union) or from all of them (the intersection)."""

    names: tuple[str, ...]
    coders: tuple[str, ...]
    mode: str

    @property
    def spec(self) -> dict[str, object]:
        """What goes into a run's spec (only when --coded-by was given: other specs keep their hash)."""
        return {"names": list(self.names), "mode": self.mode}

    def describe(self) -> str:
        """E.g. "coded by alice or bob" (the union), "coded by alice and bob" (the intersection)."""
        if len(self.coders) > 5:
            return f"coded by {'all' if self.mode == 'all' else 'any'} of {len(self.coders)} coders ({', '.join(self.names)})"
        return "coded by " + (" and " if self.mode == "all" else " or ").join(self.coders)


@dataclass(frozen=True)
class Overlap:
    """How many of a selection's documents one human or gold coder coded."""

    coder: str
    kind: str
    coded: int
    of: int


def parse_names(value: str | Sequence[str]) -> list[str]:
    """``"alice, bob"`` or ``["alice", "bob"]`` -> sorted names without repeats or blanks."""
    parts = value.split(",") if isinstance(value, str) else [p for v in value for p in str(v).split(",")]
    return sorted({p.strip() for p in parts if p.strip()})


def _known(session: Session) -> str:
    rows = session.execute(select(col(Coder.name), col(Coder.kind)).order_by(col(Coder.name))).all()
    people = [f"{n} ({k})" for n, k in rows if k in ("human", "gold")]
    others = [n for n, k in rows if k not in ("human", "gold")]
    shown = ", ".join(people) or "none yet (import codes with `annotator import codes`)"
    if others:
        shown += f"; other coders: {', '.join(others[:8])}{' ...' if len(others) > 8 else ''}"
    return f"human and gold coders: {shown}; `humans` names every human coder, `gold` every gold coder"


def _named(value: str | Sequence[str]) -> str:
    """``coded_by`` as the caller gave it, for a message (`annotator.errors.arg`)."""
    return arg("coded_by", value if isinstance(value, str) else Listed(value))


def resolve(
    session: Session, value: str | Sequence[str], mode: str = "any"
) -> tuple[CodedBy, dict[str, int]]:
    """Check the names and expand ``humans``/``gold``; returns the selection and coder name -> id."""
    if mode not in MODES:
        raise InputError(f"{arg('mode', mode)}: use any (the union) or all (the intersection)")
    names = parse_names(value)
    shown = _named(value)
    if not names:
        raise InputError(f"{shown}: name one or more coders; {_known(session)}")
    coders: dict[str, int] = {}
    for name in names:
        if name in GROUPS:
            rows = session.execute(
                select(col(Coder.name), col(Coder.id)).where(col(Coder.kind) == GROUPS[name])
            ).all()
            if not rows:
                raise InputError(f"{shown}: there is no {GROUPS[name]} coder; {_known(session)}")
            coders.update({n: int(i) for n, i in rows})
            continue
        row = session.execute(select(col(Coder.id)).where(col(Coder.name) == name)).first()
        if row is None:
            raise InputError(f"{shown}: no coder named {name!r}; {_known(session)}")
        coders[name] = int(row[0])
    return CodedBy(tuple(names), tuple(sorted(coders)), mode), coders


def coded_documents(session: Session, coder_ids: Iterable[int], codebook: str | None) -> dict[int, set[int]]:
    """Coder id -> the documents it gave a valid code to (on ``codebook``, any version, when given)."""
    ids = sorted(set(coder_ids))
    out: dict[int, set[int]] = {i: set() for i in ids}
    for start in range(0, len(ids), CHUNK):
        query = (
            select(col(Run.coder_id), col(Annotation.document_id))
            .join(Run, col(Run.id) == col(Annotation.run_id))
            .where(
                col(Run.coder_id).in_(ids[start : start + CHUNK]),
                col(Annotation.status) == "ok",
                col(Annotation.label).is_not(None),
            )
            .distinct()
        )
        if codebook is not None:
            query = query.join(CodebookVersion, col(CodebookVersion.id) == col(Run.codebook_id)).where(
                col(CodebookVersion.name) == codebook
            )
        for coder_id, doc_id in session.execute(query).all():
            out[int(coder_id)].add(int(doc_id))
    return out


def select_coded(
    session: Session,
    value: str | Sequence[str],
    mode: str,
    candidates: Sequence[int],
    *,
    codebook: str | None,
    where: str,
) -> tuple[CodedBy, set[int]]:
    """The ``candidates`` (a split's document ids) the named coders coded; refuses an empty selection.

    ``where`` names the candidates in the message (e.g. "the dev split").
    """
    coded_by, coders = resolve(session, value, mode)
    per_coder = coded_documents(session, coders.values(), codebook)
    pool = set(candidates)
    sets = [per_coder[i] & pool for i in coders.values()]
    chosen = set.intersection(*sets) if mode == "all" else set.union(*sets)
    if not chosen:
        counts = ", ".join(f"{n} {len(per_coder[i] & pool)}" for n, i in sorted(coders.items()))
        on = f" on codebook {codebook}" if codebook else ""
        raise InputError(
            f"{_named(value)}: no document of {where} was {coded_by.describe()}{on}"
            f" (valid codes on {where}: {counts}); pick another split or other coders"
        )
    return coded_by, chosen


def overlap(session: Session, document_ids: Iterable[int], codebook: str | None) -> list[Overlap]:
    """For each human and gold coder: how many of ``document_ids`` it coded (validly, on ``codebook``)."""
    chosen = set(document_ids)
    rows = session.execute(
        select(col(Coder.id), col(Coder.name), col(Coder.kind))
        .where(col(Coder.kind).in_(("human", "gold")))
        .order_by(col(Coder.kind), col(Coder.name))
    ).all()
    per_coder = coded_documents(session, (int(i) for i, _, _ in rows), codebook)
    return [Overlap(name, kind, len(per_coder[int(i)] & chosen), len(chosen)) for i, name, kind in rows]
