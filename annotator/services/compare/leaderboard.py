"""`annotator compare`: a leaderboard of LLM and baseline runs against one gold coder, with paired tests.

Which items (the coverage rule). Each run is scored on its own items: the gold coder's items of the split that
the run was asked (its stored selection: the whole split, or a sample). An asked item without a valid answer
(invalid, error, or never answered) counts as an error, as in `annotator validate`; an item the run was never
asked is out of scope. So a sampled run's row is on its sample (its n is shown), and adding a sampled run
changes neither the figures nor the order of the others. A row on fewer than ``min_units`` items is flagged
``too_few`` and ranked after the rows with enough items. Each run's figures are `annotator validate`'s
(`validation_figures`: accuracy, macro and weighted F1, kappa, coverage, with intervals on the same seed).

Alpha vs majority: Krippendorff's alpha (nominal) between the run and the majority label of the human coders
(every coder of kind human except the gold coder; ties left out and counted), on the units of the split the
run was asked where that majority exists and the run gave a codebook label: the same figure as `annotator
agreement`'s. Asked units without such a label (invalid, error, never answered, or the uncertain label) are
left out and counted (``n_no_label``); accuracy and coverage beside it count them as errors. Undefined (None,
with the reason) without human coders or on fewer than ``min_units`` units. Unlike the humans+run pooled
alpha, it is not dominated by how much the humans agree among themselves.

Cost, time and tokens are per run as a whole (every document and repeat it labeled, divided by its valid
answers), not restricted to the gold items.

Pairwise, for two runs A (ranked higher) and B, on the gold items both were asked (n shown):

- McNemar's exact test: of the items exactly one of them gets right, A gets ``a_only`` and B ``b_only``;
  under "equally accurate" a_only ~ Binomial(a_only + b_only, 1/2); the two-sided binomial p. Holm-adjusted
  p values correct for the number of pairs actually tested (the family of one call).
- paired bootstrap of accuracy(A) - accuracy(B) and of macro-F1(A) - macro-F1(B): the same resampled items
  for both runs; a difference whose accuracy interval excludes zero is marked ``significant``. The mark is
  not adjusted for multiple pairs; Holm's p is.
- a pair sharing fewer than ``min_units`` gold items is not tested (a note says so) and is left out of the
  Holm family.

Default pairs: every pair when there are at most four runs, otherwise each run against the best. One run is
allowed: its row is shown and there is nothing to pair.

``prompts=True``: for each prompt name of the codebook with two or more versions that have runs on the split,
each version's runs with their figures (each on its own asked items, as above), pairwise tests between the
prompt's runs (on the items both were asked) and a unified diff of the registered template between
consecutive versions.

The result is computed fresh (stored validation rows depend on their own run set and parameters) and stored
as one metrics row of kind ``compare`` (``compare_prompts`` for prompts), so the report can quote it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, cast, overload

from annotator.errors import InputError, Listed, arg
from annotator.project import Project
from annotator.services.agreement import SPLITS, load_codes
from annotator.services.compare.prompts import prompt_bodies, prompt_versions
from annotator.services.compare.ranking import (
    ALL_PAIRS_UP_TO,
    PAIRS,
    SORTS,
    class_warnings,
    pairwise_tests,
    ranked_entries,
    scope_notes,
)
from annotator.services.compare.result import Compared, Comparison, PromptComparison, Setting, Sort, Split
from annotator.services.compare.scoring import NO_HUMANS, Scorer, run_costs
from annotator.services.results import stamped
from annotator.services.validation import RunInfo, default_gold, load_gold_and_runs
from annotator.stats.intervals import CI, MIN_UNITS
from annotator.store.models import Metric

__all__ = ["ALL_PAIRS_UP_TO", "PAIRS", "SORTS", "compare"]


# -- the API ------------------------------------------------------------------------------------------------


@overload
def compare(
    project: Project,
    gold: str | None = None,
    split: str | None = None,
    runs: list[int] | None = None,
    codebook: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    sort: str = "macro_f1",
    pairs: str = "auto",
    prompts: Literal[False] = False,
    min_units: int = MIN_UNITS,
) -> Comparison: ...


@overload
def compare(
    project: Project,
    gold: str | None = None,
    split: str | None = None,
    runs: list[int] | None = None,
    codebook: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    sort: str = "macro_f1",
    pairs: str = "auto",
    *,
    prompts: Literal[True],
    min_units: int = MIN_UNITS,
) -> PromptComparison: ...


@overload
def compare(
    project: Project,
    gold: str | None = None,
    split: str | None = None,
    runs: list[int] | None = None,
    codebook: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    sort: str = "macro_f1",
    pairs: str = "auto",
    prompts: bool = False,
    min_units: int = MIN_UNITS,
) -> Compared: ...


def compare(
    project: Project,
    gold: str | None = None,
    split: str | None = None,
    runs: list[int] | None = None,
    codebook: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    sort: str = "macro_f1",
    pairs: str = "auto",
    prompts: bool = False,
    min_units: int = MIN_UNITS,
) -> Compared:
    """The leaderboard and pairwise tests of runs against a gold coder (see the module docstring); with
    ``prompts``, each prompt's versions side by side with template diffs. ``split`` defaults to test for the
    leaderboard and dev for prompts. Returns the `Comparison` (`PromptComparison` with ``prompts``), with
    ``metric_id`` (the stored row)."""
    split = split or ("dev" if prompts else "test")
    sort = _check(split, sort, pairs, n_boot, min_units)
    if runs is not None:
        runs = list(dict.fromkeys(runs))
    with project.transaction() as session:
        gold_name = gold.strip() if gold is not None else default_gold(session)
        data = load_gold_and_runs(session, gold_name, split, runs, codebook)
        matrix = load_codes(session, data["codebook"], split)
        costs = run_costs(session, [i.id for i in data["runs"]])
        bodies = prompt_bodies(session, data["runs"]) if prompts else {}

    scorer = Scorer(data, matrix, {i.id: i.selected for i in data["runs"]}, n_boot, seed, min_units)
    notes: list[str] = []
    infos = _scored(scorer, data["runs"], runs, costs, notes)
    if not scorer.ref:
        notes.append(f"alpha vs the human majority is undefined: {NO_HUMANS}")
    setting = Setting(
        gold=data["gold"],
        codebook=data["codebook"],
        codebook_versions=data["codebook_versions"],
        split=cast(Split, split),
        n_gold=len(data["doc_ids"]),
        labels=data["labels"],
        uncertain_label=data["uncertain"],
        sort=sort,
        n_boot=n_boot,
        seed=seed,
        ci=CI,
        min_units=min_units,
    )
    result: Compared
    if prompts:
        result = prompt_versions(project, scorer, infos, costs, bodies, setting, pairs, notes)
    else:
        result = _leaderboard(scorer, infos, costs, setting, pairs, notes)
    general = [n.format(min_units=min_units) for n in _NOTES[: None if result.paired else -1]]
    result = dataclasses.replace(result, notes=notes + general)
    params = {
        "gold": data["gold"],
        "split": split,
        "runs": runs,
        "codebook": data["codebook"],
        "sort": sort,
        "pairs": pairs,
        "n_boot": n_boot,
        "seed": seed,
        "ci": CI,
        "min_units": min_units,
        "prompts": prompts,
    }
    return dataclasses.replace(result, metric_id=_store(project, result, params))


def _check(split: str, sort: str, pairs: str, n_boot: int, min_units: int) -> Sort:
    """Refuse a setting out of range; the sort as a figure's name (``macro-f1`` -> ``macro_f1``)."""
    if split not in SPLITS:
        raise InputError(f"{arg('split', split)}: use dev, test or all")
    if sort.replace("-", "_") not in SORTS:
        raise InputError(f"{arg('sort', sort)}: use macro-f1 or accuracy")
    if pairs not in PAIRS:
        raise InputError(f"{arg('pairs', pairs)}: use auto, best or all")
    if n_boot < 1:
        raise InputError(f"{arg('n_boot', n_boot)}: use at least 1 replicate (1000 is the default)")
    if min_units < 1:
        raise InputError(f"{arg('min_units', min_units)}: use 1 or more ({MIN_UNITS} is the default)")
    return cast(Sort, sort.replace("-", "_"))


def _other_splits(idle: list[RunInfo], costs: dict[int, dict[str, Any]], split: str) -> str:
    """The splits to try instead of ``split``, as arguments: the idle runs' own splits, else every other."""
    own = sorted({str(costs[i.id]["run_split"]) for i in idle} & set(SPLITS) - {split})
    return " or ".join(arg("split", s) for s in own or [s for s in SPLITS if s != split])


def _scored(
    scorer: Scorer,
    infos: list[RunInfo],
    runs: list[int] | None,
    costs: dict[int, dict[str, Any]],
    notes: list[str],
) -> list[RunInfo]:
    """The runs asked some of the split's gold items; the others refused when named, else left out (a note)."""
    idle = [i for i in infos if not scorer.items(i)]
    if not idle:
        return infos
    shown = ", ".join(f"run:{i.id}" for i in idle)
    n_gold = len(scorer.doc_ids)
    if runs is not None:
        raise InputError(
            f"{arg('runs', Listed(runs))}: {shown} was asked none of the {n_gold} gold items of the "
            f"{scorer.split} split; choose the split they labeled: {_other_splits(idle, costs, scorer.split)}"
        )
    notes.append(
        f"left out, asked none of the {scorer.split} split's {n_gold} gold items: {shown} "
        "(choose the split they labeled with --split)"
    )
    return [i for i in infos if i not in idle]


def _store(project: Project, result: Compared, params: dict[str, Any]) -> int | None:
    """Store the result as one metrics row (kind compare, or compare_prompts); its id."""
    kind = "compare" if isinstance(result, Comparison) else "compare_prompts"
    stored = stamped(kind, {k: v for k, v in result.to_json().items() if k != "metric_id"})
    with project.transaction() as session:
        row = Metric(kind=kind, run_id=None, split=result.split, params=params, result=stored)
        session.add(row)
        session.flush()
        return row.id


_NOTES = [
    "each run is scored on the gold items it was asked (n per run); an asked item without a valid answer "
    "counts as an error, an item never asked is out of scope; each run's first answer (repeat 0) is scored",
    "alpha vs majority: the run against the human coders' majority label (ties left out), on the units it was "
    "asked where it gave a codebook label (as `annotator agreement`); asked units without one are counted as "
    "n_no_label",
    "cost, time and tokens are per run, of the whole run (every document and repeat it labeled, not only the "
    "gold items; cached answers cost nothing) divided by its valid answers; time runs from start to finish, "
    "pauses of a resumed run included",
    "pairs are tested on the gold items both runs were asked; a pair sharing fewer than {min_units} is not "
    "tested and is left out of Holm's family; 'significant': the paired bootstrap interval of the accuracy "
    "difference excludes zero (not adjusted for the number of pairs); p_holm is McNemar's exact p adjusted by "
    "Holm's method over the pairs tested",
]


def _leaderboard(
    scorer: Scorer,
    infos: list[RunInfo],
    costs: dict[int, dict[str, Any]],
    setting: Setting,
    pairs: str,
    notes: list[str],
) -> Comparison:
    if not infos:
        raise InputError(
            f"compare needs a run asked some of the {scorer.split} split's gold items (found none); label "
            "them (`annotator run`, `annotator baseline`) or choose another split: "
            + " or ".join(arg("split", s) for s in SPLITS if s != scorer.split)
        )
    notes += scope_notes(scorer, infos, "compare")
    entries, warnings = ranked_entries(scorer, infos, costs, setting["sort"])
    for rank, entry in enumerate(entries, 1):
        entry["rank"] = rank
    few = [f"run:{e['run_id']} ({e['n_items']})" for e in entries if e["too_few"] is not None]
    if few:
        notes.append(
            f"scored on fewer than {scorer.min_units} gold items, ranked after the others: {', '.join(few)}"
        )
    mode, comparisons = pairwise_tests(scorer, entries, {i.id: i for i in infos}, pairs)
    if len(entries) == 1:
        notes.append(f"one run (run:{entries[0]['run_id']}): nothing to pair")
    return Comparison(
        **setting,
        mode="leaderboard",
        humans=scorer.humans_alpha(),
        runs=entries,
        best_run=entries[0]["run_id"],
        pairs=mode,
        comparisons=comparisons,
        warnings=class_warnings(entries, warnings, len(scorer.doc_ids)),
        notes=notes,
    )
