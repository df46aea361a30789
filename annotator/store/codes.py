"""The codes of one codebook on one split as a coders x units matrix: what every agreement figure reads.

Each coder's row holds its codes on the units it was asked (see `annotator.store.asked`): a run's codes
outside its asked set are dropped, so a unit a run never selected counts neither for nor against it. Invalid
answers and the uncertain label are missing unless asked to be categories.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from annotator.codebook import Codebook
from annotator.errors import InputError, Listed, arg
from annotator.stats.intervals import CI, MIN_UNITS, json_number, percentile_interval
from annotator.store.asked import asked_sets
from annotator.store.models import Annotation, CodebookVersion, Coder, Document, Run
from annotator.store.registry import stored_codebook

__all__ = ["CI", "MIN_UNITS", "SPLITS", "CodeMatrix", "json_number", "load_codes", "percentile_interval"]

Array = NDArray[np.float64]
SPLITS = ("dev", "test", "all")
REFERENCE_KINDS = ("human", "gold")
RUN_KINDS = ("llm", "baseline")
INVALID_CATEGORY = "(invalid)"  # the category invalid answers become with --invalid-as-category


@dataclass
class CoderInfo:
    name: str
    kind: str  # human, gold, llm or baseline
    run_id: int | None = None  # LLM and baseline runs (humans may span several import runs)
    repeat: int | None = None
    model: str | None = None
    n_codes: int = 0  # valid codes in the matrix
    n_invalid: int = 0  # invalid or error answers (missing)
    n_uncertain: int = 0  # uncertain answers (missing, or a category)
    n_asked: int | None = None  # units of the matrix the coder was asked (runs: its stored selection)


@dataclass
class CodeMatrix:
    """Coders x units category indices (NaN: missing), with what the rows, columns and values are."""

    codes: Array
    coders: list[CoderInfo]
    units: list[int]  # document ids
    categories: list[str]
    codebook: str
    codebook_versions: list[int]
    split: str
    uncertain_label: str | None
    uncertain_as_category: bool
    values: list[float] = field(default_factory=list)  # each category's number on the codebook's scale
    invalid_as_category: bool = False
    asked: NDArray[np.bool_] | None = None  # coders x units: the unit is in the coder's asked set
    scale: str | None = None  # the codebook's kind (nominal, ordinal); None: not known (no check)
    values_given: bool | None = None  # every label has a `value:` (ratio needs it); None: not known
    unused_gold: list[str] = field(default_factory=list)  # gold coders with codes here that were not named

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.coders]

    @property
    def uncertain_note(self) -> str:
        if self.uncertain_label is None:
            return "the codebook has no uncertain label"
        how = "category" if self.uncertain_as_category else "missing"
        invalid = "a category" if self.invalid_as_category else "missing"
        return f"uncertain ({self.uncertain_label!r}) treated as {how}; invalid answers treated as {invalid}"

    def asked_row(self, i: int) -> NDArray[np.bool_]:
        """Where coder ``i`` was asked: its asked set, or (not known) where it has a code."""
        if self.asked is None:
            return np.isfinite(self.codes[i])
        return self.asked[i]


def _coder_key(name: str) -> str:
    return name.strip()


def codes_query(*columns: Any) -> Any:
    """A select of ``columns`` over every annotation joined to its run, coder, codebook version and document."""
    return (
        sa_select(*columns)
        .join(Run, col(Run.id) == col(Annotation.run_id))
        .join(Coder, col(Coder.id) == col(Run.coder_id))
        .join(CodebookVersion, col(CodebookVersion.id) == col(Run.codebook_id))
        .join(Document, col(Document.id) == col(Annotation.document_id))
    )


def load_codes(
    session: Session,
    codebook_name: str,
    split: str,
    coders: list[str] | None = None,
    uncertain_as_category: bool = False,
    invalid_as_category: bool = False,
) -> CodeMatrix:
    """The codes of a codebook's coders on a split: humans by name, runs as ``run:N`` (repeat r > 0:
    ``run:N#r``), gold coders only when named. Invalid and error answers are missing; the uncertain label is
    missing unless ``uncertain_as_category``. A run's codes outside its asked set (its stored selection) are
    left out, and ``asked`` records each coder's asked set over the units. Units nobody coded (after that)
    are left out."""
    if split not in SPLITS:
        raise InputError(f"{arg('split', split)}: use dev, test or all")
    scheme = _scheme(session, codebook_name, uncertain_as_category, invalid_as_category)
    rows = _code_rows(session, codebook_name, split, archived=coders is not None)
    asked_of = asked_sets(session, {row[4] for row in rows if row[5] in RUN_KINDS})
    infos, cells = _collect_cells(rows, asked_of, scheme, uncertain_as_category, invalid_as_category)
    selected, unused_gold = _select_coders(infos, coders, codebook_name, split)
    chosen = [infos[n] for n in selected]
    codes, asked, doc_ids = _build_matrix(chosen, cells, asked_of, scheme.categories, codebook_name)
    return CodeMatrix(
        codes=codes,
        coders=chosen,
        units=doc_ids,
        categories=scheme.categories,
        codebook=codebook_name,
        codebook_versions=[v.version for v in scheme.versions],
        split=split,
        uncertain_label=scheme.uncertain_label,
        uncertain_as_category=uncertain_as_category,
        values=scheme.values,
        invalid_as_category=invalid_as_category,
        asked=asked,
        scale=scheme.latest.kind,
        values_given=scheme.values_given,
        unused_gold=unused_gold,
    )


# -- the steps of load_codes -------------------------------------------------------------------------------


@dataclass
class _Scheme:
    """What the stored versions of a codebook make of its codes: categories, values, the uncertain label."""

    versions: list[CodebookVersion]  # oldest first
    latest: Codebook
    uncertain_names: set[str]  # the uncertain label's name in any version
    uncertain_label: str | None  # the one it counts as (the latest version's)
    categories: list[str]
    values: list[float]
    values_given: bool


def _scheme(
    session: Session, codebook_name: str, uncertain_as_category: bool, invalid_as_category: bool
) -> _Scheme:
    """The stored versions of ``codebook_name`` and the categories and values they define."""
    versions = session.exec(select(CodebookVersion).where(col(CodebookVersion.name) == codebook_name)).all()
    if not versions:
        known = sorted(set(session.exec(select(CodebookVersion.name)).all()))
        raise InputError(
            f"no codes under codebook {codebook_name!r} (codebooks with codes: {', '.join(known) or 'none'})"
        )
    versions = sorted(versions, key=lambda v: v.version)
    books = [stored_codebook(session, v.name, v.version) for v in versions]
    latest = books[-1]
    if latest.kind == "multilabel":
        raise InputError(
            f"codebook {latest.ref} is multilabel: agreement needs one label per text (nominal or ordinal)"
        )
    uncertain_names = {b.uncertain.name for b in books if b.uncertain is not None}
    uncertain_label = latest.uncertain.name if latest.uncertain else next(iter(uncertain_names), None)
    categories = _categories(books, uncertain_label, uncertain_as_category, invalid_as_category)
    values, values_given = _category_values(books, categories)
    return _Scheme(
        versions=versions,
        latest=latest,
        uncertain_names=uncertain_names,
        uncertain_label=uncertain_label,
        categories=categories,
        values=values,
        values_given=values_given,
    )


def _categories(
    books: list[Codebook], uncertain_label: str | None, uncertain_as_category: bool, invalid_as_category: bool
) -> list[str]:
    """The latest version's labels in its order, then labels only older versions had, then the uncertain
    label and the invalid category when they count as categories."""
    categories: list[str] = []
    for book in reversed(books):
        categories += [n for n in book.label_names if n not in categories]
    if uncertain_as_category and uncertain_label is not None:
        categories.append(uncertain_label)
    if invalid_as_category:
        categories.append(INVALID_CATEGORY)
    return categories


def _category_values(books: list[Codebook], categories: list[str]) -> tuple[list[float], bool]:
    """Each category's number: the ``value:`` of the newest version that defines the label, its position
    when none gives one; and whether every category has a ``value:``."""
    values: list[float] = []
    values_given = True
    for i, name in enumerate(categories):
        given = next((lab.value for b in reversed(books) for lab in b.labels if lab.name == name), None)
        values_given = values_given and given is not None
        values.append(float(i) if given is None else float(given))
    return values, values_given


def _code_rows(session: Session, codebook_name: str, split: str, archived: bool) -> list[Any]:
    """Every code of the codebook on the split, as (document, repeat, label, status, run id, run kind, model,
    coder name), by coder, run, repeat and document. Archived runs only when ``archived``."""
    query = (
        codes_query(
            col(Annotation.document_id),
            col(Annotation.repeat),
            col(Annotation.label),
            col(Annotation.status),
            col(Run.id),
            col(Run.kind),
            col(Run.model),
            col(Coder.name),
        )
        .where(col(CodebookVersion.name) == codebook_name)
        .order_by(col(Coder.id), col(Run.id), col(Annotation.repeat), col(Annotation.document_id))
    )
    if split != "all":
        query = query.where(col(Document.split) == split)
    if not archived:  # archived runs (`annotator runs archive`) only when named
        query = query.where(col(Run.archived_at).is_(None))
    else:  # named coders: an archived LLM or baseline run may be named (run:N); an archived import never counts
        query = query.where(or_(col(Run.archived_at).is_(None), col(Run.kind).in_(RUN_KINDS)))
    rows = list(session.execute(query).all())
    if not rows:
        n_split = len(session.exec(select(Document.id).where(col(Document.split) == split)).all())
        hint = (
            f"assign splits first (`annotator split --test 0.3 --seed 1`) or use {arg('split', 'all')}"
            if split != "all" and n_split == 0
            else "import codes (`annotator import codes`) or label with `annotator run`"
        )
        raise InputError(f"no codes of codebook {codebook_name!r} on split {split!r}; {hint}")
    return rows


Cells = dict[tuple[str, int], tuple[int, str | None]]  # (coder, doc) -> (run id, category or None: missing)


def _collect_cells(
    rows: list[Any],
    asked_of: dict[int, set[int]],
    scheme: _Scheme,
    uncertain_as_category: bool,
    invalid_as_category: bool,
) -> tuple[dict[str, CoderInfo], Cells]:
    """Each coder (in the order of ``rows``) and its category on each document; a run's codes outside its
    asked set are dropped."""
    infos: dict[str, CoderInfo] = {}
    cells: Cells = {}
    for doc_id, repeat, label, status, run_id, run_kind, model, coder_name in rows:
        if run_kind in RUN_KINDS and doc_id not in asked_of.get(run_id, ()):
            continue  # never asked: out of scope for every figure about the run
        if run_kind in REFERENCE_KINDS:
            name, info_run, info_repeat = coder_name, None, None
        else:
            name = f"run:{run_id}" if repeat == 0 else f"run:{run_id}#{repeat}"
            info_run, info_repeat = run_id, repeat
        info = infos.setdefault(name, CoderInfo(name, run_kind, info_run, info_repeat, model))
        value = _cell_value(info, label, status, scheme, uncertain_as_category, invalid_as_category)
        previous = cells.get((name, doc_id))
        if previous is None or previous[0] <= run_id:  # a coder imported under two versions: the latest run
            cells[(name, doc_id)] = (run_id, value)
    return infos, cells


def _cell_value(
    info: CoderInfo,
    label: str | None,
    status: str,
    scheme: _Scheme,
    uncertain_as_category: bool,
    invalid_as_category: bool,
) -> str | None:
    """The category one answer counts as (None: missing), counting it in ``info``'s invalid or uncertain."""
    if status != "ok" or label is None:
        info.n_invalid += 1
        # an answer that did not validate may count as a category; a failed request never does
        return INVALID_CATEGORY if invalid_as_category and status == "invalid" else None
    if label in scheme.uncertain_names:
        info.n_uncertain += 1
        if uncertain_as_category and scheme.uncertain_label is not None:
            return scheme.uncertain_label  # an older version's uncertain name counts as the current one
        return label if uncertain_as_category else None
    return label


def _select_coders(
    infos: dict[str, CoderInfo], coders: list[str] | None, codebook_name: str, split: str
) -> tuple[list[str], list[str]]:
    """The coders named (default: every one but gold coders), and the gold coders left out by default."""
    if coders is None:
        selected = [n for n, i in infos.items() if i.kind != "gold"]
        return selected, [n for n, i in infos.items() if i.kind == "gold"]
    selected = list(dict.fromkeys(_coder_key(c) for c in coders if c.strip()))
    unknown = [c for c in selected if c not in infos]
    if unknown:
        raise InputError(
            f"no codes of codebook {codebook_name!r} on split {split!r} from: {', '.join(unknown)} "
            f"(coders here: {', '.join(infos)})"
        )
    if not selected:
        raise InputError(
            f"{arg('coders', Listed(coders))}: name at least one coder, e.g. "
            f"{arg('coders', Listed(['alice', 'bob', 'run:7']))}"
        )
    return selected, []


def _build_matrix(
    chosen: list[CoderInfo],
    cells: Cells,
    asked_of: dict[int, set[int]],
    categories: list[str],
    codebook_name: str,
) -> tuple[Array, NDArray[np.bool_], list[int]]:
    """The chosen coders' codes and asked sets over the units any of them coded, and those units; sets each
    coder's ``n_codes`` and ``n_asked``."""
    row_of = {c.name: i for i, c in enumerate(chosen)}
    cat_index = {c: i for i, c in enumerate(categories)}
    doc_ids = sorted(
        {doc for (name, doc), (_, value) in cells.items() if name in row_of and value is not None}
    )
    unit_index = {d: j for j, d in enumerate(doc_ids)}
    codes = np.full((len(chosen), len(doc_ids)), np.nan)
    for (name, doc), (_, value) in cells.items():
        if name not in row_of or value is None:
            continue
        if value not in cat_index:
            raise InputError(
                f"coder {name!r} has label {value!r}, which no version of codebook {codebook_name!r} defines"
            )
        codes[row_of[name], unit_index[doc]] = cat_index[value]
    asked = np.zeros(codes.shape, dtype=bool)
    for name, doc in cells:  # humans and gold: what they coded (a run's cells lie within its asked set)
        if name in row_of and doc in unit_index:
            asked[row_of[name], unit_index[doc]] = True
    for info in chosen:  # runs: every unit of their selection, answered or not
        if info.kind in RUN_KINDS and info.run_id is not None:
            cols = [unit_index[d] for d in asked_of.get(info.run_id, ()) if d in unit_index]
            asked[row_of[info.name], cols] = True
    for info in chosen:
        info.n_codes = int(np.isfinite(codes[row_of[info.name]]).sum())
        info.n_asked = int(asked[row_of[info.name]].sum())
    return codes, asked, doc_ids


# -- statistics on shared bootstrap draws ------------------------------------------------------------------


def default_codebook(session: Session) -> str:
    names = sorted(set(session.exec(select(CodebookVersion.name)).all()))
    if len(names) == 1:
        return names[0]
    if not names:
        raise InputError(
            "no codes yet: import codes (`annotator import codes`) or label with `annotator run`"
        )
    raise InputError(
        f"say which codebook with {arg('codebook', 'NAME')} (codebooks with codes: {', '.join(names)})"
    )
