"""The typed result of `annotator validate` (`annotator.services.validation.validate`).

``Validation.to_json()`` is what ``validate --json`` prints. Each metrics row of kind validation stores the
same header (every field but ``runs``), one run's ``StoredRun`` as ``"run"`` and the schema
(`annotator.services.results.stamped`); the returned ``RunEntry`` adds the id of that row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NotRequired, TypedDict

from annotator.services.results import Result

Split = Literal["dev", "test", "all"]
RunKind = Literal["llm", "baseline"]


class Interval(TypedDict):
    """A figure with its interval (`annotator.stats.intervals`); None where undefined."""

    estimate: float | None
    low: float | None
    high: float | None
    method: NotRequired[Literal["wilson"]]  # a proportion's Wilson score interval (accuracy, coverage)
    undefined_share: NotRequired[float | None]  # bootstrap: share of replicates where it is undefined
    unreliable: NotRequired[bool]  # bootstrap: that share is above 5%


class ClassFigures(TypedDict):
    """One class of the per-class figures (a label gold uses)."""

    label: str
    precision: float | None  # None where undefined (no answer of that label)
    recall: float | None
    f1: float | None
    support: int  # its gold items


class Confusion(TypedDict):
    rows: list[str]  # gold's labels
    columns: list[str]  # the run's answers, the last "(invalid/missing)"
    matrix: list[list[int]]  # counts, rows x columns


class Figures(TypedDict):
    """A run's figures on a set of gold items it was asked (all of them, or one group's)."""

    n_gold: int  # the gold items it was asked: the n of every figure
    n_correct: int
    n_valid: int  # with a valid answer
    n_invalid: int  # an invalid or error answer
    n_missing: int  # no answer at all (an interrupted run)
    n_uncertain: int  # answered the codebook's uncertain label
    coverage: float | None  # n_valid / n_gold
    coverage_interval: Interval
    warnings: list[str]  # small n, small classes
    per_class: list[ClassFigures]  # in the codebook's label order
    confusion: Confusion
    accuracy: Interval  # Wilson
    macro_f1: Interval  # bootstrap; over the classes gold uses
    weighted_f1: float | None
    kappa: Interval  # Cohen's, bootstrap; invalid/missing answers one more category


class ByGroups(TypedDict):
    """A run's figures per value of a document metadata column (``by``)."""

    column: str
    groups: dict[str, Figures]  # value -> figures, "(missing)" last; only the groups it was asked items of
    not_asked: list[str]  # the groups it was asked no gold item of


class FreezeStatus(TypedDict):
    """Whether the run's prompt was frozen before the run started (a test-split run)."""

    frozen_before_run: bool | None  # None: a run without a prompt (a baseline)
    prompt: str | None  # the prompt's ref
    frozen_at: str | None  # "YYYY-MM-DD HH:MM:SS UTC"; None: never frozen
    started_at: str  # "YYYY-MM-DD HH:MM:SS UTC"
    line: str  # the verdict in one line


class StoredRun(TypedDict):
    """One run's entry as a metrics row stores it (under ``"run"``). A run named with ``runs`` that was asked
    none of the gold items has only the first keys, ``asked_none`` and ``line``; a scored run has its
    figures, and ``frozen`` (test split) and ``by`` (a ``by`` column) where they apply."""

    run_id: int
    kind: RunKind
    model: str | None
    prompt: str | None  # the prompt's ref; None for a baseline
    n_asked: int  # documents the run was asked, gold or not, every split
    n_gold: int  # of them, the gold items of the split: its figures' n (0 when asked none)
    asked_none: NotRequired[Literal[True]]  # asked none of the gold items: no figures, nothing stored
    line: NotRequired[str]  # asked_none: why it has no figures
    n_correct: NotRequired[int]  # this and the following, as in Figures
    n_valid: NotRequired[int]
    n_invalid: NotRequired[int]
    n_missing: NotRequired[int]
    n_uncertain: NotRequired[int]
    coverage: NotRequired[float | None]
    coverage_interval: NotRequired[Interval]
    warnings: list[str]  # its small-n warning first
    per_class: NotRequired[list[ClassFigures]]
    confusion: NotRequired[Confusion]
    accuracy: NotRequired[Interval]
    macro_f1: NotRequired[Interval]
    weighted_f1: NotRequired[float | None]
    kappa: NotRequired[Interval]
    frozen: NotRequired[FreezeStatus]  # test split only
    by: NotRequired[ByGroups]  # with a ``by`` column only


class RunEntry(StoredRun):
    metric_id: int | None  # its metrics row; None when asked none (nothing stored)


@dataclass(frozen=True)
class Validation(Result):
    """Each run against a gold coder (`annotator validate`); ``to_json()`` is what ``validate --json`` prints."""

    gold: str  # the gold coder's name
    gold_kind: Literal["gold", "human"]  # a human coder named as gold is allowed
    codebook: str  # its name
    codebook_versions: list[int]  # every version of it, scored together
    split: Split
    by: str | None  # the metadata column of the per-group figures
    labels: list[str]  # every version's labels, the latest version's first
    uncertain_label: str | None  # the latest version's uncertain label
    uncertain_note: str  # how that label is scored, in words
    n_gold: int  # kept for older readers: the split's gold items (= n_gold_split), not a run's n
    n_gold_split: int  # the gold items of the split
    scope: Literal["asked"]  # each run's figures are on gold ∩ its asked set (its entry's n_gold)
    min_units: int  # below this n a run's or group's figures are warned unstable
    n_boot: int  # bootstrap replicates
    seed: int  # the bootstrap's seed
    ci: float  # the intervals' level (0.95)
    notes: list[str]  # how to read the figures, and what was left out
    runs: list[RunEntry]  # in run id order
