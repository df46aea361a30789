"""Ranking runs against gold and testing pairs of them (`annotator compare`): the sort order, each run's
leaderboard entry, McNemar's exact test and the paired bootstrap on the items both runs were asked, with
Holm's correction over the pairs tested (see `annotator.services.compare.leaderboard`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

from annotator.services.compare.result import PairMode, PairTest, RunEntry
from annotator.services.compare.scoring import Scorer
from annotator.services.validation import RunInfo
from annotator.stats.intervals import estimate, too_few
from annotator.stats.significance import fmt_p, holm, mcnemar_exact, p_json
from annotator.textfmt import interval

SORTS = ("macro_f1", "accuracy")
PAIRS = ("auto", "best", "all")
ALL_PAIRS_UP_TO = 4  # "auto": every pair up to this many runs, each run against the best above it


def _estimate(entry: RunEntry, figure: str) -> float | None:
    return (entry["accuracy"] if figure == "accuracy" else entry["macro_f1"])["estimate"]


def sort_key(sort: str) -> Callable[[RunEntry], tuple[bool, float, float, int]]:
    """Rows with enough items first, then by the sort figure, the other figure, and run id."""
    other = "accuracy" if sort == "macro_f1" else "macro_f1"

    def key(entry: RunEntry) -> tuple[bool, float, float, int]:
        first, second = _estimate(entry, sort), _estimate(entry, other)
        return (
            entry["too_few"] is not None,
            -(first if first is not None else -math.inf),
            -(second if second is not None else -math.inf),
            entry["run_id"],
        )

    return key


def _comparison(scorer: Scorer, a: RunInfo, b: RunInfo) -> PairTest:
    """A against B on the gold items both were asked; not tested (with a note) below ``min_units``."""
    shared_set = set(scorer.items(a)) & set(scorer.items(b))
    shared = [d for d in scorer.doc_ids if d in shared_set]
    n = len(shared)
    if n < scorer.min_units:
        return PairTest(
            a=a.id,
            b=b.id,
            n_items=n,
            tested=False,
            a_only_correct=None,
            b_only_correct=None,
            mcnemar_p=None,
            p_holm=None,
            accuracy_difference=None,
            macro_f1_difference=None,
            significant=None,
            reason=too_few(n, scorer.min_units),
            line=f"run:{a.id} and run:{b.id} share {n} gold items (fewer than {scorer.min_units}): not tested",
        )
    ca, sa = scorer.paired(a, shared)
    cb, sb = scorer.paired(b, shared)
    a_only, b_only = int((ca & ~cb).sum()), int((~ca & cb).sum())
    diff = sa - sb
    acc = estimate(float(diff[0, 0]), diff[1:, 0])
    macro = estimate(float(diff[0, 1]), diff[1:, 1])
    lo, hi = acc["low"], acc["high"]
    significant = lo is not None and hi is not None and (lo > 0 or hi < 0)
    return PairTest(
        a=a.id,
        b=b.id,
        n_items=n,
        tested=True,
        a_only_correct=a_only,
        b_only_correct=b_only,
        mcnemar_p=mcnemar_exact(a_only, b_only),
        p_holm=None,
        accuracy_difference=acc,
        macro_f1_difference=macro,
        significant=significant,
        reason=None,
        line="",  # the verdict, once Holm's p is known (`pairwise_tests`)
    )


def _verdict(c: PairTest) -> str:
    a, b = f"run:{c['a']}", f"run:{c['b']}"
    d = c["accuracy_difference"]
    assert d is not None  # a tested pair
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


def _pairs(ranked: list[RunEntry], pairs: str) -> tuple[PairMode, list[tuple[int, int]]]:
    mode = cast(PairMode, pairs if pairs != "auto" else ("all" if len(ranked) <= ALL_PAIRS_UP_TO else "best"))
    n = len(ranked)
    if mode == "all":
        return mode, [(i, j) for i in range(n) for j in range(i + 1, n)]
    return mode, [(0, j) for j in range(1, n)]


def pairwise_tests(
    scorer: Scorer, ranked: list[RunEntry], by_id: dict[int, RunInfo], pairs: str
) -> tuple[PairMode, list[PairTest]]:
    """The pairwise comparisons of ranked entries, with Holm's p over the pairs actually tested."""
    mode, index_pairs = _pairs(ranked, pairs)
    comparisons = [
        _comparison(scorer, by_id[ranked[i]["run_id"]], by_id[ranked[j]["run_id"]]) for i, j in index_pairs
    ]
    tested = [c for c in comparisons if c["tested"]]
    raw = cast(list[float], [c["mcnemar_p"] for c in tested])  # a tested pair has its p
    for c, p, adjusted in zip(tested, raw, holm(raw), strict=True):
        c["mcnemar_p"], c["p_holm"] = p_json(p), p_json(adjusted)
        c["line"] = _verdict(c)
    return mode, comparisons


def run_entry(info: RunInfo, fig: dict[str, Any], cost: dict[str, Any]) -> RunEntry:
    """A run's leaderboard entry: who it is, the headline figures, cost, then the details (per class...).
    ``rank`` is set once the entries are sorted; ``fig``'s small-class warnings go to `class_warnings`."""
    return RunEntry(
        rank=0,
        run_id=info.id,
        coder=cost["coder"],
        kind=info.kind,
        model=info.model,
        prompt=info.prompt,
        n_items=fig["n_items"],
        too_few=fig["too_few"],
        accuracy=fig["accuracy"],
        macro_f1=fig["macro_f1"],
        weighted_f1=fig["weighted_f1"],
        kappa=fig["kappa"],
        coverage=fig["coverage"],
        alpha_vs_majority=fig["alpha_vs_majority"],
        status=cost["status"],
        run_split=cost["run_split"],
        n_valid_total=cost["n_valid_total"],
        cost_usd=cost["cost_usd"],
        cost_per_valid=cost["cost_per_valid"],
        seconds=cost["seconds"],
        seconds_per_valid=cost["seconds_per_valid"],
        tokens_in=cost["tokens_in"],
        tokens_out=cost["tokens_out"],
        tokens_per_valid=cost["tokens_per_valid"],
        n_correct=fig["n_correct"],
        n_valid=fig["n_valid"],
        n_invalid=fig["n_invalid"],
        n_missing=fig["n_missing"],
        n_uncertain=fig["n_uncertain"],
        coverage_interval=fig["coverage_interval"],
        per_class=fig["per_class"],
        confusion=fig["confusion"],
    )


def ranked_entries(
    scorer: Scorer, infos: list[RunInfo], costs: dict[int, dict[str, Any]], sort: str
) -> tuple[list[RunEntry], dict[int, list[str]]]:
    """The runs' entries sorted (not yet ranked), and each run's small-class warnings."""
    figures = {i.id: scorer.score(i, scorer.items(i)) for i in infos}
    entries = [run_entry(i, figures[i.id], costs[i.id]) for i in infos]
    entries.sort(key=sort_key(sort))
    return entries, {run_id: fig["warnings"] for run_id, fig in figures.items()}


def scope_notes(scorer: Scorer, infos: list[RunInfo], what: str) -> list[str]:
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


def class_warnings(entries: list[RunEntry], warnings: dict[int, list[str]], n_gold: int) -> list[str]:
    """Small-class warnings, in the entries' order: once for the runs on every gold item, named for the
    others."""
    out: list[str] = []
    for e in entries:
        for w in warnings.get(e["run_id"], []):
            text = w if e["n_items"] == n_gold else f"run:{e['run_id']} ({e['n_items']} items): {w}"
            if text not in out:
                out.append(text)
    return out
