"""The typed results of `annotator compare`: the leaderboard (`Comparison`) and prompt versions side by side
(`PromptComparison`). ``to_json()`` is what ``compare --json`` prints; the stored metrics row (kinds
``compare`` and ``compare_prompts``) is the same dict without ``metric_id``, with the schema
(`annotator.services.results.stamped`).

A figure with an interval (`Figure`) stays a plain dict: its keys depend on how it was computed (a Wilson
interval carries ``method``, a bootstrap one ``undefined_share`` and ``unreliable``, an undefined one its
``reason``), and the report and the CLI read it as validate's and agreement's figures are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from annotator.services.results import Result

# {"estimate", "low", "high"} (None where undefined) and, by how it was computed: "method" (wilson),
# "undefined_share" and "unreliable" (bootstrap replicates), "reason" (why undefined, or None), counts of units
Figure = dict[str, Any]
Split = Literal["dev", "test", "all"]
Sort = Literal["macro_f1", "accuracy"]
PairMode = Literal["all", "best"]  # every pair, or each run against the best (``pairs="auto"`` resolved)


class Humans(TypedDict):
    """The human coders (every coder of kind human but the gold coder) among themselves: context for the
    runs' alpha vs their majority."""

    coders: list[str]  # their names; empty without human coders (alpha then undefined, with the reason)
    alpha: Figure  # Krippendorff's alpha (nominal) on the split's gold items, with pairable_units and reason


class ClassFigures(TypedDict):
    label: str
    precision: float | None
    recall: float | None
    f1: float | None
    support: int  # gold items of this label


class Confusion(TypedDict):
    rows: list[str]  # the gold labels
    columns: list[str]  # the run's answers: the labels, the uncertain label, then the invalid column
    matrix: list[list[int]]  # counts, rows x columns


class RunEntry(TypedDict):
    """A run's leaderboard row: who it is, the headline figures (each on the gold items it was asked), cost,
    time and tokens of the whole run, then the details (validate's figures)."""

    rank: int  # 1 = best (in prompts mode: across the prompt's versions); rows with too few items last
    run_id: int
    coder: str  # the run's coder name
    kind: str  # llm or baseline
    model: str | None
    prompt: str | None  # the prompt's ref; None for a baseline
    n_items: int  # the gold items of the split the run was asked: every figure's n
    too_few: str | None  # "too few units (n; at least m needed)" below min_units, else None
    accuracy: Figure  # Wilson interval; an asked item without a valid answer counts as an error
    macro_f1: Figure  # percentile bootstrap
    weighted_f1: float | None
    kappa: Figure  # Cohen's kappa against gold, percentile bootstrap
    coverage: float | None  # share of asked items with a valid answer
    alpha_vs_majority: Figure  # vs the human majority label, with n_units, n_ties_left_out, n_no_label
    status: str  # the run's status (done, partial, ...)
    run_split: str  # the split the run was started on
    n_valid_total: int  # valid answers of the whole run (every document and repeat)
    cost_usd: float | None  # the whole run, USD
    cost_per_valid: float | None  # USD per valid answer
    seconds: float | None  # start to finish, pauses included
    seconds_per_valid: float | None
    tokens_in: int  # the whole run
    tokens_out: int
    tokens_per_valid: float | None  # in + out, per valid answer
    n_correct: int
    n_valid: int
    n_invalid: int  # invalid or error answers
    n_missing: int  # asked, never answered
    n_uncertain: int  # answered with the uncertain label
    coverage_interval: Figure  # Wilson interval of coverage
    per_class: list[ClassFigures]
    confusion: Confusion | None


class PairTest(TypedDict):
    """Two runs on the gold items both were asked: McNemar's exact test and the paired bootstrap."""

    a: int  # the higher-ranked run's id
    b: int  # the other run's id
    n_items: int  # gold items both were asked
    tested: bool  # False below min_units shared items (then every figure is None, with the reason)
    a_only_correct: int | None  # items only A got right
    b_only_correct: int | None  # items only B got right
    mcnemar_p: float | None  # two-sided exact binomial p
    p_holm: float | None  # Holm-adjusted over the pairs tested in this call
    accuracy_difference: Figure | None  # accuracy(A) - accuracy(B), paired bootstrap
    macro_f1_difference: Figure | None  # macro-F1(A) - macro-F1(B), paired bootstrap
    significant: bool | None  # the accuracy difference's interval excludes zero (not adjusted)
    reason: str | None  # why not tested
    line: str  # the verdict in words


class PromptVersion(TypedDict):
    version: int
    prompt: str  # its ref, codebook/name.vN
    sha256: str  # of the registered template
    frozen_at: str | None  # ISO time; None when not frozen
    runs: list[RunEntry]  # this version's runs, best first


PromptDiff = TypedDict("PromptDiff", {"from": str, "to": str, "diff": str})  # refs, and the unified diff


class PromptGroup(TypedDict):
    """One prompt name with two or more versions that have runs on the split."""

    prompt: str  # codebook/name
    humans: Humans
    versions: list[PromptVersion]  # in version order
    pairs: PairMode
    comparisons: list[PairTest]  # between the prompt's runs, across versions
    diffs: list[PromptDiff]  # between consecutive versions' templates


class Setting(TypedDict):
    """What every comparison states first: against whom, on what, and how (the first keys of both results)."""

    gold: str  # the gold coder
    codebook: str  # its name
    codebook_versions: list[int]  # every registered version of the codebook, whose labels are pooled
    split: Split
    n_gold: int  # gold items on the split
    labels: list[str]  # the codebook's labels
    uncertain_label: str | None
    sort: Sort
    n_boot: int  # bootstrap replicates
    seed: int  # of the bootstrap
    ci: float  # the intervals' level (0.95)
    min_units: int  # fewest items to show a figure, test a pair, rank a run normally


@dataclass(frozen=True)
class _Compared(Result):
    """The `Setting` fields, in its order; each result's own fields follow."""

    gold: str
    codebook: str
    codebook_versions: list[int]
    split: Split
    n_gold: int
    labels: list[str]
    uncertain_label: str | None
    sort: Sort
    n_boot: int
    seed: int
    ci: float
    min_units: int


@dataclass(frozen=True)
class Comparison(_Compared):
    """The leaderboard (`annotator compare`); ``to_json()`` is what ``compare --json`` prints."""

    mode: Literal["leaderboard"]
    humans: Humans
    runs: list[RunEntry]  # ranked
    best_run: int  # the first row's run id
    pairs: PairMode
    comparisons: list[PairTest]
    warnings: list[str]  # small classes
    notes: list[str]  # what was left out, and how the figures were computed
    metric_id: int | None = None  # the stored metrics row (kind compare)

    @property
    def paired(self) -> bool:
        """Whether any pair of runs was compared."""
        return bool(self.comparisons)


@dataclass(frozen=True)
class PromptComparison(_Compared):
    """Prompt versions side by side (`annotator compare --prompts`); ``to_json()`` is what it prints with
    ``--json``."""

    mode: Literal["prompts"]
    prompts: list[PromptGroup]  # by codebook and prompt name
    warnings: list[str]  # small classes
    notes: list[str]
    metric_id: int | None = None  # the stored metrics row (kind compare_prompts)

    @property
    def paired(self) -> bool:
        """Whether any pair of runs was compared."""
        return any(g["comparisons"] for g in self.prompts)


Compared = Comparison | PromptComparison
