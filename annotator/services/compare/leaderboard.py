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

import math
from itertools import pairwise
from typing import Any

import numpy as np
from numpy.typing import NDArray

from annotator.errors import InputError
from annotator.project import Project
from annotator.prompts import PromptRef, parse_prompt, parse_ref, prompt_diff
from annotator.services.agreement import SPLITS, load_codes
from annotator.services.compare.scoring import NO_HUMANS, Scorer, run_costs
from annotator.services.validation import (
    RunInfo,
    default_gold,
    load_gold_and_runs,
)
from annotator.stats.intervals import CI, MIN_UNITS, estimate, too_few
from annotator.stats.significance import fmt_p, holm, mcnemar_exact, p_json
from annotator.store.models import Metric, as_utc
from annotator.store.registry import find_prompt_version
from annotator.textfmt import interval

Array = NDArray[np.float64]
SORTS = ("macro_f1", "accuracy")
PAIRS = ("auto", "best", "all")
ALL_PAIRS_UP_TO = 4  # "auto": every pair up to this many runs, each run against the best above it


# -- small helpers ------------------------------------------------------------------------------------------


def _sort_key(sort: str) -> Any:
    """Rows with enough items first, then by the sort figure, the other figure, and run id."""
    other = "accuracy" if sort == "macro_f1" else "macro_f1"

    def key(entry: dict[str, Any]) -> tuple[bool, float, float, int]:
        first, second = entry[sort]["estimate"], entry[other]["estimate"]
        return (
            entry["too_few"] is not None,
            -(first if first is not None else -math.inf),
            -(second if second is not None else -math.inf),
            entry["run_id"],
        )

    return key


def _comparison(scorer: Scorer, a: RunInfo, b: RunInfo) -> dict[str, Any]:
    """A against B on the gold items both were asked; not tested (with a note) below ``min_units``."""
    shared_set = set(scorer.items(a)) & set(scorer.items(b))
    shared = [d for d in scorer.doc_ids if d in shared_set]
    n = len(shared)
    out: dict[str, Any] = {"a": a.id, "b": b.id, "n_items": n}
    if n < scorer.min_units:
        note = f"run:{a.id} and run:{b.id} share {n} gold items (fewer than {scorer.min_units}): not tested"
        return out | {
            "tested": False,
            "a_only_correct": None,
            "b_only_correct": None,
            "mcnemar_p": None,
            "p_holm": None,
            "accuracy_difference": None,
            "macro_f1_difference": None,
            "significant": None,
            "reason": too_few(n, scorer.min_units),
            "line": note,
        }
    ca, sa = scorer.paired(a, shared)
    cb, sb = scorer.paired(b, shared)
    a_only, b_only = int((ca & ~cb).sum()), int((~ca & cb).sum())
    diff = sa - sb
    acc = estimate(float(diff[0, 0]), diff[1:, 0])
    macro = estimate(float(diff[0, 1]), diff[1:, 1])
    lo, hi = acc["low"], acc["high"]
    significant = lo is not None and hi is not None and (lo > 0 or hi < 0)
    return out | {
        "tested": True,
        "a_only_correct": a_only,
        "b_only_correct": b_only,
        "mcnemar_p": mcnemar_exact(a_only, b_only),
        "p_holm": None,
        "accuracy_difference": acc,
        "macro_f1_difference": macro,
        "significant": significant,
        "reason": None,
    }


def _verdict(c: dict[str, Any]) -> str:
    a, b = f"run:{c['a']}", f"run:{c['b']}"
    d = c["accuracy_difference"]
    if not c["significant"]:
        verdict = f"no clear difference in accuracy between {a} and {b}"
    elif (d["low"] or 0) > 0:
        verdict = f"{a} is more accurate than {b}"
    else:
        verdict = f"{a} is less accurate than {b}"
    return (
        f"{a} minus {b}, accuracy on the {c['n_items']} gold items both were asked: {interval(d)}; McNemar "
        f"exact p = {fmt_p(c['mcnemar_p'])} (Holm {fmt_p(c['p_holm'])}; {a} alone right on "
        f"{c['a_only_correct']}, {b} alone right on {c['b_only_correct']}): {verdict}"
    )


def _pairs(ranked: list[dict[str, Any]], pairs: str) -> tuple[str, list[tuple[int, int]]]:
    mode = pairs if pairs != "auto" else ("all" if len(ranked) <= ALL_PAIRS_UP_TO else "best")
    n = len(ranked)
    if mode == "all":
        return mode, [(i, j) for i in range(n) for j in range(i + 1, n)]
    return mode, [(0, j) for j in range(1, n)]


def _tests(
    scorer: Scorer, ranked: list[dict[str, Any]], by_id: dict[int, RunInfo], pairs: str
) -> tuple[str, list[dict[str, Any]]]:
    """The pairwise comparisons of ranked entries, with Holm's p over the pairs actually tested."""
    mode, index_pairs = _pairs(ranked, pairs)
    comparisons = [
        _comparison(scorer, by_id[ranked[i]["run_id"]], by_id[ranked[j]["run_id"]]) for i, j in index_pairs
    ]
    tested = [c for c in comparisons if c["tested"]]
    for c, p in zip(tested, holm([c["mcnemar_p"] for c in tested]), strict=True):
        c["mcnemar_p"], c["p_holm"] = p_json(c["mcnemar_p"]), p_json(p)
        c["line"] = _verdict(c)
    return mode, comparisons


_HEADLINE = (
    "n_items",
    "too_few",
    "accuracy",
    "macro_f1",
    "weighted_f1",
    "kappa",
    "coverage",
    "alpha_vs_majority",
)


def _entry(info: RunInfo, fig: dict[str, Any], cost: dict[str, Any]) -> dict[str, Any]:
    """A run's leaderboard entry: who it is, the headline figures, cost, then the details (per class...)."""
    head = {
        "rank": None,
        "run_id": info.id,
        "coder": cost["coder"],
        "kind": info.kind,
        "model": info.model,
        "prompt": info.prompt,
    }
    rest = {k: v for k, v in fig.items() if k not in _HEADLINE}
    return head | {k: fig[k] for k in _HEADLINE} | {k: v for k, v in cost.items() if k != "coder"} | rest


def _scope_notes(scorer: Scorer, infos: list[RunInfo], what: str) -> list[str]:
    """A note for each run asked fewer than the split's gold items (a sample, or another selection)."""
    n_gold = len(scorer.doc_ids)
    partial = [(i, len(scorer.items(i))) for i in infos if len(scorer.items(i)) < n_gold]
    if not partial:
        return []
    shown = ", ".join(f"run:{i.id} on {n}" for i, n in partial)
    return [
        f"{what}: runs asked fewer than the {n_gold} gold items are scored on the gold items they were asked "
        f"({shown}); the other runs' figures do not depend on them"
    ]


def _warnings(entries: list[dict[str, Any]], n_gold: int) -> list[str]:
    """Small-class warnings: once for the runs on every gold item, named for the others."""
    out: list[str] = []
    for e in entries:
        for w in e.pop("warnings", []):
            text = w if e["n_items"] == n_gold else f"run:{e['run_id']} ({e['n_items']} items): {w}"
            if text not in out:
                out.append(text)
    return out


# -- the API ------------------------------------------------------------------------------------------------


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
) -> dict[str, Any]:
    """The leaderboard and pairwise tests of runs against a gold coder (see the module docstring); with
    ``prompts``, each prompt's versions side by side with template diffs. ``split`` defaults to test for the
    leaderboard and dev for prompts. Returns the JSON-ready result with ``metric_id`` (the stored row)."""
    split = split or ("dev" if prompts else "test")
    if split not in SPLITS:
        raise InputError(f"--split {split!r}: use dev, test or all")
    sort = sort.replace("-", "_")
    if sort not in SORTS:
        raise InputError(f"--sort {sort!r}: use macro-f1 or accuracy")
    if pairs not in PAIRS:
        raise InputError(f"--pairs {pairs!r}: use auto, best or all")
    if n_boot < 1:
        raise InputError(f"--bootstrap {n_boot}: use at least 1 replicate (1000 is the default)")
    if min_units < 1:
        raise InputError(f"--min-units {min_units}: use 1 or more ({MIN_UNITS} is the default)")
    if runs is not None:
        runs = list(dict.fromkeys(runs))
    with project.transaction() as session:
        gold_name = gold.strip() if gold is not None else default_gold(session)
        data = load_gold_and_runs(session, gold_name, split, runs, codebook)
        matrix = load_codes(session, data["codebook"], split)
        costs = run_costs(session, [i.id for i in data["runs"]])
        bodies: dict[str, tuple[str, str, str | None]] = {}
        if prompts:
            for info in data["runs"]:
                if info.prompt is not None and info.prompt not in bodies:
                    version = find_prompt_version(session, parse_ref(info.prompt))
                    assert version is not None  # a run's prompt is registered before it starts
                    frozen = as_utc(version.frozen_at)
                    bodies[info.prompt] = (
                        version.body,
                        version.sha256,
                        frozen.isoformat() if frozen else None,
                    )

    scorer = Scorer(data, matrix, {i.id: i.selected for i in data["runs"]}, n_boot, seed, min_units)
    infos: list[RunInfo] = data["runs"]
    notes: list[str] = []
    idle = [i for i in infos if not scorer.items(i)]
    if idle:
        shown = ", ".join(f"run:{i.id}" for i in idle)
        if runs is not None:
            raise InputError(
                f"--runs: {shown} was asked none of the {len(data['doc_ids'])} gold items of the {split} split; "
                "choose the split they labeled with --split"
            )
        notes.append(
            f"left out, asked none of the {split} split's {len(data['doc_ids'])} gold items: {shown} "
            "(choose the split they labeled with --split)"
        )
        infos = [i for i in infos if i not in idle]
    if not scorer.ref:
        notes.append(f"alpha vs the human majority is undefined: {NO_HUMANS}")
    common: dict[str, Any] = {
        "gold": data["gold"],
        "codebook": data["codebook"],
        "codebook_versions": data["codebook_versions"],
        "split": split,
        "n_gold": len(data["doc_ids"]),
        "labels": data["labels"],
        "uncertain_label": data["uncertain"],
        "sort": sort,
        "n_boot": n_boot,
        "seed": seed,
        "ci": CI,
        "min_units": min_units,
    }
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
    }
    if prompts:
        result = common | _prompts(project, scorer, infos, costs, bodies, sort, pairs, notes)
        kind = "compare_prompts"
    else:
        result = common | _leaderboard(scorer, infos, costs, sort, pairs, notes)
        kind = "compare"
    paired = result.get("comparisons") or any(g["comparisons"] for g in result.get("prompts", []))
    result["notes"] = notes + [n.format(min_units=min_units) for n in _NOTES[: None if paired else -1]]
    with project.transaction() as session:
        row = Metric(kind=kind, run_id=None, split=split, params=params | {"prompts": prompts}, result=result)
        session.add(row)
        session.flush()
        result["metric_id"] = row.id
    return result


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
    sort: str,
    pairs: str,
    notes: list[str],
) -> dict[str, Any]:
    if not infos:
        raise InputError(
            f"compare needs a run asked some of the {scorer.split} split's gold items (found none); label "
            "them (`annotator run`, `annotator baseline`) or choose another split with --split"
        )
    notes += _scope_notes(scorer, infos, "compare")
    entries = [_entry(i, scorer.score(i, scorer.items(i)), costs[i.id]) for i in infos]
    entries.sort(key=_sort_key(sort))
    for rank, entry in enumerate(entries, 1):
        entry["rank"] = rank
    few = [f"run:{e['run_id']} ({e['n_items']})" for e in entries if e["too_few"] is not None]
    if few:
        notes.append(
            f"scored on fewer than {scorer.min_units} gold items, ranked after the others: {', '.join(few)}"
        )
    mode, comparisons = _tests(scorer, entries, {i.id: i for i in infos}, pairs)
    if len(entries) == 1:
        notes.append(f"one run (run:{entries[0]['run_id']}): nothing to pair")
    return {
        "mode": "leaderboard",
        "humans": scorer.humans_alpha(),
        "runs": entries,
        "best_run": entries[0]["run_id"],
        "pairs": mode,
        "comparisons": comparisons,
        "warnings": _warnings(entries, len(scorer.doc_ids)),
    }


def _prompts(
    project: Project,
    scorer: Scorer,
    infos: list[RunInfo],
    costs: dict[int, dict[str, Any]],
    bodies: dict[str, tuple[str, str, str | None]],
    sort: str,
    pairs: str,
    notes: list[str],
) -> dict[str, Any]:
    groups: dict[tuple[str, str], dict[int, list[RunInfo]]] = {}
    for info in infos:
        if info.prompt is None:
            continue
        ref = parse_ref(info.prompt)
        groups.setdefault((ref.codebook, ref.name), {}).setdefault(ref.version, []).append(info)
    several = {k: v for k, v in sorted(groups.items()) if len(v) >= 2}
    if not several:
        shown = ", ".join(f"{c}/{n} (v{', v'.join(map(str, sorted(v)))})" for (c, n), v in groups.items())
        raise InputError(
            f"no prompt of codebook {scorer.data['codebook']!r} has two or more versions with runs on the "
            f"{scorer.split} split (prompts with runs: {shown or 'none'}); label with another version "
            f"(`annotator prompt new`, then `annotator run --split {scorer.split}`)"
        )
    by_id = {i.id: i for i in infos}
    humans = scorer.humans_alpha()
    out: list[dict[str, Any]] = []
    warnings: list[str] = []
    for (book, name), versions in several.items():
        members = [i for v in sorted(versions) for i in versions[v]]
        notes += _scope_notes(scorer, members, f"{book}/{name}")
        key = _sort_key(sort)
        version_out: list[dict[str, Any]] = []
        ranked: list[dict[str, Any]] = []
        templates = []
        for v in sorted(versions):
            ref = PromptRef(book, name, v)
            body, sha, frozen = bodies[str(ref)]
            entries = [_entry(i, scorer.score(i, scorer.items(i)), costs[i.id]) for i in versions[v]]
            entries.sort(key=key)
            ranked += entries
            version_out.append(
                {"version": v, "prompt": str(ref), "sha256": sha, "frozen_at": frozen, "runs": entries}
            )
            templates.append(parse_prompt(body, ref, project.prompts_dir / ref.filename))
        ranked.sort(key=key)
        for rank, entry in enumerate(ranked, 1):
            entry["rank"] = rank  # across the prompt's versions
        mode, comparisons = _tests(scorer, ranked, by_id, pairs)
        warnings += [w for w in _warnings(ranked, len(scorer.doc_ids)) if w not in warnings]
        diffs = [
            {"from": str(a.ref), "to": str(b.ref), "diff": prompt_diff(a, b)} for a, b in pairwise(templates)
        ]
        out.append(
            {
                "prompt": f"{book}/{name}",
                "humans": humans,
                "versions": version_out,
                "pairs": mode,
                "comparisons": comparisons,
                "diffs": diffs,
            }
        )
    return {"mode": "prompts", "prompts": out, "warnings": warnings}
