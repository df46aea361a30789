"""`annotator agreement`: inter-coder reliability of the stored codes, humans and LLM runs alike.

Reads the codes of one codebook on one split into a coders x units matrix (`load_codes`), computes every
figure on it (`annotator.stats.agreement`, whose docstring lists them: human-human reliability, each run
against the humans on the units it coded, stability over repeats, pairwise kappas, run-vs-run comparisons)
and stores the result.

Why not the pooled alpha of the humans plus the run. It measures the humans as much as the run: beside 15
agreeing crowd coders a run answering one label for every text, or a chance-level run, still gets alpha
0.67-0.84, because nearly every pair in the coincidence matrix is a human-human pair. A run's agreement with
the humans is therefore its agreement with the human majority and its mean pairwise agreement with each
human, which pair the run with the humans only; the pooled figure is shown only as "the reliability of the
humans with the run added", next to the humans-only figure.

Every figure carries its n (units, and pairable values for alpha). Below ``min_units`` units (default 30)
a figure is "too few units (n)" instead of a number; a mean over pairs leaves out pairs below it. Bootstrap
replicates in which a statistic is undefined are counted (``undefined_share``); above 5% the interval is
flagged ``unreliable``. Within one run's figures every statistic uses the same bootstrap draws of that
run's units, so the paired differences are consistent.

The yardstick (Törnberg 2024 compares one coder with one coder): on the units the run coded, the run's mean
kappa with each human minus the humans' mean pairwise kappa on the same units, with its paired bootstrap
interval, against a non-inferiority margin (default 0.05): "at the human level" when the interval's lower
bound lies above -margin, "below the human level" when its upper bound lies below -margin, "inconclusive"
otherwise (or with too few units, or an unreliable interval).

Kappas are unweighted for nominal data, linearly weighted for ``--level ordinal`` and quadratically weighted
for interval and ratio (distances between category positions in codebook order). Ordered levels need an
ordinal codebook; ratio needs a ``value:`` on every label (alpha's ratio metric divides by the sum of the
values, so label positions 0..k-1 would give a different, wrong figure).

Layers: this module checks the settings, loads the matrix (`annotator.store.codes`) and stores the result as a
metrics row; the figures are `annotator.stats.agreement`'s (no database), their words
`annotator.stats.agreement_text`'s. `agreement` returns an `Agreement`; `compute_agreement` (the figures on a
loaded matrix, read by the report) returns them as the dict that is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from annotator.errors import InputError, arg
from annotator.project import Project
from annotator.services.results import Result, stamped
from annotator.stats.agreement import (
    CoderEntry,
    Comparison,
    Humans,
    Pairwise,
    RunEntry,
    Settings,
    Stability,
    Treated,
    agreement_figures,
)
from annotator.stats.agreement_text import MARGIN, VERDICTS, YARDSTICK_RULE, yardstick_rule
from annotator.stats.intervals import CI, MIN_UNITS, json_number, percentile_interval
from annotator.stats.paired import _Stats, compare_verdict, yardstick_verdict
from annotator.stats.reliability import LEVELS
from annotator.store.codes import (
    INVALID_CATEGORY,
    REFERENCE_KINDS,
    RUN_KINDS,
    SPLITS,
    CodeMatrix,
    CoderInfo,
    _coder_key,
    codes_query,
    default_codebook,
    load_codes,
)
from annotator.store.models import Metric

__all__ = [
    "CI",
    "INVALID_CATEGORY",
    "LEVELS",
    "MARGIN",
    "MIN_UNITS",
    "REFERENCE_KINDS",
    "RUN_KINDS",
    "SPLITS",
    "VERDICTS",
    "YARDSTICK_RULE",
    "Agreement",
    "CodeMatrix",
    "CoderInfo",
    "_Stats",
    "agreement",
    "codes_query",
    "compare_verdict",
    "compute_agreement",
    "default_codebook",
    "json_number",
    "load_codes",
    "percentile_interval",
    "yardstick_rule",
    "yardstick_verdict",
]


@dataclass(frozen=True)
class Agreement(Result):
    """Reliability of the stored codes (`annotator agreement`); ``to_json()`` is what ``agreement --json``
    prints, and, less ``metric_id``, the stored metrics row's result. The records are
    `annotator.stats.agreement`'s; a figure is a dict (`annotator.stats.agreement_matrix.Figure`)."""

    codebook: str  # the codebook's name
    codebook_versions: list[int]  # its versions
    split: str  # dev, test or all
    level: str  # nominal, ordinal, interval or ratio
    values: dict[str, float] | None  # label -> its value on the scale (None: nominal)
    values_given: bool | None  # every label has a `value:` (None: not known)
    kappa_weights: Literal["linear", "quadratic"] | None  # None: unweighted (nominal)
    categories: list[str]  # the labels, in codebook order (with the uncertain or invalid category if counted)
    uncertain: Treated  # how the uncertain label counts
    invalid: Treated  # how invalid answers count
    uncertain_label: str | None  # the codebook's uncertain label
    uncertain_note: str  # how uncertain and invalid answers were treated, in words
    n_boot: int  # bootstrap replicates
    seed: int  # the bootstrap's seed
    ci: float  # the intervals' coverage (0.95)
    min_units: int  # the overlap (units) below which a figure is "too few units (n)"
    margin: float  # the yardstick's non-inferiority margin (kappa points)
    n_units: int  # units in the matrix (coded by any coder)
    coders: list[CoderEntry]  # every coder of the matrix, in its order
    unused_gold: list[str]  # gold coders with codes here that were not named (so not used)
    humans: Humans  # human-human reliability
    runs: list[RunEntry]  # each run and repeat against the humans, on the units it coded
    stability: list[Stability]  # each run with two or more repeats
    comparisons: list[Comparison]  # pairs of runs (every pair, or the one named by ``compare``)
    pairwise: Pairwise  # Cohen's kappa of every pair of coders
    yardstick_rule: str  # the yardstick's rule in one sentence
    notes: list[str]  # what a reader needs to know (the first: uncertain_note)
    metric_id: int | None  # the stored metrics row (kind agreement); None on a read-only database


class _Given:
    """A value in an error as each face spells it: ``text`` on the command line, ``python`` in Python."""

    def __init__(self, text: str, python: str) -> None:
        self.text, self.python = text, python

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.python


def _compare_pairs(m: CodeMatrix, runs: list[int], compare: Sequence[str] | None) -> list[tuple[int, int]]:
    """Index pairs of run coders to compare: every pair, or the one named by ``compare`` (A,B)."""
    if compare is None:
        return [(i, j) for x, i in enumerate(runs) for j in runs[x + 1 :]]
    names = [_coder_key(n) for n in compare]
    available = [m.coders[i].name for i in runs]
    shown = ", ".join(available) or "none (the report has no LLM or baseline coders)"
    given = arg("compare", _Given(",".join(compare), repr(compare)))
    unknown = [n for n in names if n not in available]
    if unknown:
        raise InputError(f"{given}: unknown coder {', '.join(unknown)}; available coders: {shown}")
    if len(names) != 2 or names[0] == names[1]:
        raise InputError(f"{given}: name two different coders, A and B; available coders: {shown}")
    by_name = {m.coders[i].name: i for i in runs}
    return [(by_name[names[0]], by_name[names[1]])]


def _check_level(m: CodeMatrix, level: str) -> None:
    """Refuse a level the codebook's labels cannot carry (one line, naming the codebook and what to do)."""
    if level not in LEVELS:
        raise InputError(f"{arg('level', level)}: use one of {', '.join(LEVELS)}")
    if level == "nominal":
        return
    if m.scale is not None and m.scale != "ordinal":
        raise InputError(
            f"{arg('level', level)}: codebook {m.codebook!r} is kind: {m.scale}, so its labels have no order; "
            f"use {arg('level', 'nominal')}, or make the codebook kind: ordinal (a new version) to use an "
            "ordered level"
        )
    nominal = arg("level", "nominal")
    if m.invalid_as_category:
        raise InputError(
            f"{arg('invalid_as_category')} needs {nominal}: invalid answers have no place on a {level} scale"
        )
    if m.uncertain_as_category and m.uncertain_label is not None:
        raise InputError(
            f"{arg('uncertain_as_category')} needs {nominal}: {m.uncertain_label!r} has no place on a {level} "
            "scale"
        )
    if level == "ratio" and m.values_given is False:
        raise InputError(
            f"{arg('level', level)} needs a numeric `value:` on every label of codebook {m.codebook!r} (ratio "
            "alpha compares the labels' numbers, and positions 0..k-1 would give a wrong figure); add them in a "
            f"new version, or use {arg('level', 'ordinal')}"
        )


def _check_settings(n_boot: int, min_units: int, margin: float) -> None:
    if n_boot < 1:
        raise InputError(f"{arg('n_boot', n_boot)}: use at least 1 replicate (1000 is the default)")
    if min_units < 1:
        raise InputError(f"{arg('min_units', min_units)}: use 1 or more ({MIN_UNITS} is the default)")
    if not 0 <= margin < 1:
        raise InputError(
            f"{arg('margin', margin)}: use a kappa difference from 0 to 1 ({MARGIN} is the default)"
        )


def compute_agreement(
    m: CodeMatrix,
    level: str = "nominal",
    n_boot: int = 1000,
    seed: int = 0,
    compare: Sequence[str] | None = None,
    min_units: int = MIN_UNITS,
    margin: float = MARGIN,
) -> dict[str, Any]:
    """Every figure of `agreement` on a loaded matrix (no database): the settings checked, then
    `annotator.stats.agreement.agreement_figures`.

    ``compare`` (two run coder names, A and B) limits the comparisons to that pair; ``min_units`` is the
    overlap below which a figure is "too few units (n)"; ``margin`` is the yardstick's non-inferiority margin.
    """
    _check_level(m, level)
    _check_settings(n_boot, min_units, margin)
    ref = [i for i, c in enumerate(m.coders) if c.kind in REFERENCE_KINDS]
    runs = [i for i, c in enumerate(m.coders) if c.kind in RUN_KINDS]
    pairs = _compare_pairs(m, runs, compare)
    return agreement_figures(m, ref, runs, pairs, Settings(level, n_boot, seed, min_units, margin))


def agreement(
    project: Project,
    split: str = "dev",
    coders: list[str] | None = None,
    level: str = "nominal",
    n_boot: int = 1000,
    seed: int = 0,
    uncertain_as_category: bool = False,
    codebook: str | None = None,
    compare: Sequence[str] | None = None,
    invalid_as_category: bool = False,
    min_units: int = MIN_UNITS,
    margin: float = MARGIN,
) -> Agreement:
    """Reliability of the stored codes (see the module docstring), stored as a metrics row of kind agreement.

    ``compare`` (two run coder names, A and B) limits the run-vs-run comparisons to that pair; ``min_units``
    is the overlap below which a figure is "too few units (n)"; ``margin`` is the yardstick's margin.

    Returns the figures with ``metric_id`` (the stored row).
    """
    if level not in LEVELS:
        raise InputError(f"{arg('level', level)}: use one of {', '.join(LEVELS)}")
    if n_boot < 1:
        raise InputError(f"{arg('n_boot', n_boot)}: use at least 1 replicate (1000 is the default)")
    with project.transaction() as session:
        name = codebook or default_codebook(session)
        matrix = load_codes(session, name, split, coders, uncertain_as_category, invalid_as_category)
    result = compute_agreement(matrix, level, n_boot, seed, compare, min_units=min_units, margin=margin)
    params = {
        "codebook": name,
        "coders": coders,
        "compare": list(compare) if compare is not None else None,
        "level": level,
        "n_boot": n_boot,
        "seed": seed,
        "uncertain": result["uncertain"],
        "invalid": "category" if invalid_as_category else "missing",
        "ci": CI,
        "min_units": min_units,
        "margin": margin,
    }
    run_ids = {c.run_id for c in matrix.coders if c.run_id is not None}
    with project.transaction() as session:
        row = Metric(
            kind="agreement",
            run_id=next(iter(run_ids)) if len(run_ids) == 1 else None,
            split=split,
            params=params,
            result=stamped("agreement", result),
        )
        session.add(row)
        session.flush()
        metric_id = row.id  # None on a read-only database: computed, not stored
    return Agreement(**result, metric_id=metric_id)
