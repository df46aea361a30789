"""`annotator compare`: a leaderboard of LLM and baseline runs against one gold coder, with paired tests.

Which items. Runs are compared on the same documents: the gold coder's items of the split that every compared
run was asked about (its answer may be invalid: that counts as an error, as in `annotator validate`). When
runs labeled different samples, the common items are fewer than the split's gold items, and a note names the
runs that answered fewer. Each run's figures are `annotator validate`'s (`validation_figures`: accuracy,
macro and weighted F1, kappa, coverage, unit-bootstrap percentile intervals with the same seed), on those
items.

Alpha with the humans: Krippendorff's alpha (nominal) of the human coders (every coder of kind human except
the gold coder) plus the run, on the common items, with its own unit bootstrap; undefined (None, with the
reason) without human coders. Cost, time and tokens per valid label come from the run as a whole (every
document and repeat it labeled, divided by its valid answers).

Pairwise, for two runs A (ranked higher) and B on the common items:

- McNemar's exact test: of the items exactly one of them gets right, A gets ``a_only`` and B ``b_only``;
  under "equally accurate" a_only ~ Binomial(a_only + b_only, 1/2); the two-sided binomial p. Holm-adjusted
  p values correct for the number of pairs shown (the family of one call).
- paired bootstrap of accuracy(A) - accuracy(B) and of macro-F1(A) - macro-F1(B): the same resampled items
  for both runs (the draws `validate` uses for its intervals); a difference whose accuracy interval excludes
  zero is marked ``significant``. The mark is not adjusted for multiple pairs; Holm's p is.

Default pairs: every pair when there are at most four runs, otherwise each run against the best.

``prompts=True``: for each prompt name of the codebook with two or more versions that have runs on the split,
each version's runs with their figures (compared on that prompt's common items) and a unified diff of the
registered template between consecutive versions.

The result is computed fresh (stored validation rows depend on their own run set and parameters) and stored
as one metrics row of kind ``compare`` (``compare_prompts`` for prompts), so the report can quote it.
"""

from __future__ import annotations

import csv
import math
import sys
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, func, select

from annotator.errors import InputError
from annotator.metrics.agreement import CI, SPLITS, CodeMatrix, json_number, load_codes, percentile_interval
from annotator.metrics.reliability import Alpha, alpha_report
from annotator.metrics.validation import (
    INVALID,
    RunInfo,
    confusion_stats,
    load_gold_and_runs,
    validation_figures,
)
from annotator.project import Project
from annotator.prompts import PromptRef, parse_prompt, parse_ref, prompt_diff
from annotator.registry import find_prompt_version
from annotator.store.models import Annotation, Coder, Metric, Run, as_utc
from annotator.textfmt import interval

Array = NDArray[np.float64]
SORTS = ("macro_f1", "accuracy")
PAIRS = ("auto", "best", "all")
ALL_PAIRS_UP_TO = 4  # "auto": every pair up to this many runs, each run against the best above it


# -- small helpers ------------------------------------------------------------------------------------------


def _est(point: float, reps: Array) -> dict[str, float | None]:
    if not math.isfinite(point):
        return {"estimate": None, "low": None, "high": None}
    lo, hi = percentile_interval(reps)
    return {"estimate": json_number(point), "low": json_number(lo), "high": json_number(hi)}


def _p(x: float) -> float:
    """A p value for JSON: six significant digits (rounding to decimals would turn a tiny p into 0)."""
    return float(f"{x:.6g}")


def fmt_p(x: float | None) -> str:
    """A p value for people: four decimals, or "<0.0001"."""
    if x is None:
        return "NaN"
    return "<0.0001" if x < 0.0001 else f"{x:.4f}"


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p values (same order as given): controls the family-wise error rate."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    out = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p: the binomial test of a_only among the a_only + b_only discordant items."""
    n = a_only + b_only
    if n == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(binomtest(a_only, n, 0.5).pvalue)


def _weights(n_items: int, n_boot: int, seed: int) -> Array:
    """How often each item is drawn in each replicate: the draws `validate` makes for its intervals."""
    draws = np.random.default_rng(seed).integers(0, n_items, size=(n_boot, n_items))
    flat = (draws + n_items * np.arange(n_boot)[:, None]).ravel()
    return np.bincount(flat, minlength=n_boot * n_items).reshape(n_boot, n_items).astype(float)


def _default_gold(session: Session) -> str:
    names = sorted(session.exec(select(Coder.name).where(col(Coder.kind) == "gold")).all())
    if len(names) == 1:
        return names[0]
    if not names:
        raise InputError(
            "no gold coder to compare against: import one (`annotator import codes --kind gold`) or build one "
            "(`annotator gold build NAME --from a,b`), or name a human coder with --gold NAME"
        )
    raise InputError(f"say which gold coder with --gold NAME (gold coders: {', '.join(names)})")


# -- scoring ------------------------------------------------------------------------------------------------


class _Scorer:
    """Figures of runs on common items, with per-run replicates on shared draws for paired differences."""

    def __init__(self, data: dict[str, Any], matrix: CodeMatrix, gold: str, n_boot: int, seed: int) -> None:
        self.data = data
        self.labels: list[str] = data["labels"]
        self.uncertain: str | None = data["uncertain"]
        self.gold_codes: dict[int, str] = data["gold_codes"]
        self.matrix = matrix
        self.n_boot = n_boot
        self.seed = seed
        self.ref = [i for i, c in enumerate(matrix.coders) if c.kind == "human" and c.name != gold]
        self.row_of = {c.name: i for i, c in enumerate(matrix.coders)}
        self.unit_of = {d: j for j, d in enumerate(matrix.units)}
        self._draws: dict[int, Array] = {}

    def weights(self, n_items: int) -> Array:
        """The bootstrap weights for ``n_items`` items (the same draws for every run on the same items)."""
        if n_items not in self._draws:
            self._draws[n_items] = _weights(n_items, self.n_boot, self.seed)
        return self._draws[n_items]

    def common_items(self, infos: list[RunInfo], what: str) -> tuple[list[int], list[str]]:
        """The gold items every run answered, and a note when that is fewer than the split's gold items."""
        doc_ids: list[int] = self.data["doc_ids"]
        common = set(doc_ids)
        for info in infos:
            common &= set(info.answers)
        if not common:
            shown = ", ".join(f"run:{i.id} ({len(i.answers)} items)" for i in infos)
            raise InputError(
                f"{what}: the runs share no gold item of the {self.split} split ({shown}); compare runs "
                "labeled on the same documents (choose them with --runs)"
            )
        notes = []
        if len(common) < len(doc_ids):
            fewer = [f"run:{i.id} answered {len(i.answers)}" for i in infos if len(i.answers) < len(doc_ids)]
            notes.append(
                f"{what}: compared on the {len(common)} of {len(doc_ids)} gold items every run answered "
                f"({', '.join(fewer)}); leave runs out with --runs to compare on more"
            )
        return sorted(common), notes

    @property
    def split(self) -> str:
        return str(self.matrix.split)

    def _alpha(self, rows: list[int], items: list[int]) -> dict[str, Any]:
        cols = [self.unit_of[d] for d in items if d in self.unit_of]
        sub = self.matrix.codes[rows][:, cols]
        rep = alpha_report(sub)
        if not math.isfinite(rep.alpha):
            return {"estimate": None, "low": None, "high": None, "pairable_units": 0, "reason": rep.reason}
        reps = Alpha().replicates(sub, self.weights(sub.shape[1]))
        return _est(rep.alpha, reps) | {"pairable_units": rep.pairable_units, "reason": None}

    def humans_alpha(self, items: list[int]) -> dict[str, Any]:
        coders = [self.matrix.coders[i].name for i in self.ref]
        if not self.ref:
            alpha: dict[str, Any] = {"estimate": None, "low": None, "high": None, "reason": NO_HUMANS}
        else:
            alpha = self._alpha(self.ref, items)
        return {"coders": coders, "alpha": alpha}

    def score(self, info: RunInfo, items: list[int]) -> tuple[dict[str, Any], NDArray[np.bool_], Array]:
        """One run's figures, its per-item correctness, and its (accuracy, macro F1) statistics: row 0 the
        point estimates, rows 1.. the bootstrap replicates."""
        y_true = [self.gold_codes[d] for d in items]
        y_pred = [a if (a := info.answers.get(d)) is not None else INVALID for d in items]
        fig = validation_figures(y_true, y_pred, self.labels, self.uncertain, 0, self.n_boot, self.seed)
        fig.pop("n_missing", None)  # nothing is missing on the common items
        fig["n_items"] = fig.pop("n_gold")
        warnings = fig.pop("warnings")
        name = f"run:{info.id}"
        if not self.ref:
            fig["alpha_with_humans"] = {"estimate": None, "low": None, "high": None, "reason": NO_HUMANS}
        elif name not in self.row_of:  # every answer invalid: the run has no code in the matrix
            fig["alpha_with_humans"] = {
                "estimate": None,
                "low": None,
                "high": None,
                "reason": "the run has no valid answer on these items",
            }
        else:
            fig["alpha_with_humans"] = self._alpha([*self.ref, self.row_of[name]], items)
        fig["_warnings"] = warnings
        # statistics on the same draws as validation_figures: (1 + n_boot) x 2
        gold_used = set(y_true)
        answer_cols = self.labels + ([self.uncertain] if self.uncertain is not None else [])
        all_cols = [*answer_cols, INVALID]
        classes = self.labels + (
            [self.uncertain] if self.uncertain is not None and self.uncertain in gold_used else []
        )
        index = {c: i for i, c in enumerate(all_cols)}
        k = len(all_cols)
        n = len(items)
        onehot = np.zeros((n, k * k))
        onehot[np.arange(n), [index[t] * k + index[p] for t, p in zip(y_true, y_pred, strict=True)]] = 1.0
        w = np.vstack([np.ones((1, n)), self.weights(n)])
        acc, macro, _ = confusion_stats(
            (w @ onehot).reshape(-1, k, k), [index[c] for c in classes if c in gold_used]
        )
        correct = np.array([t == p for t, p in zip(y_true, y_pred, strict=True)])
        return fig, correct, np.column_stack([acc, macro])


NO_HUMANS = (
    "no human coders besides the gold coder: import human codes (`annotator import codes`) to see alpha"
)


def _run_costs(session: Session, ids: list[int]) -> dict[int, dict[str, Any]]:
    """Cost, time and tokens of each run as a whole, and per valid answer (every document and repeat)."""
    ok = dict(
        session.execute(
            sa_select(col(Annotation.run_id), func.count())
            .where(col(Annotation.run_id).in_(ids), col(Annotation.status) == "ok")
            .group_by(col(Annotation.run_id))
        ).all()
    )
    rows = session.execute(
        sa_select(Run, col(Coder.name))
        .join(Coder, col(Coder.id) == col(Run.coder_id))
        .where(col(Run.id).in_(ids))
    ).all()
    out: dict[int, dict[str, Any]] = {}
    for run, coder in rows:
        assert run.id is not None
        n_ok = int(ok.get(run.id, 0))
        start, end = as_utc(run.started_at), as_utc(run.finished_at)
        seconds = (end - start).total_seconds() if start is not None and end is not None else None

        def per(x: float | None, n_ok: int = n_ok) -> float | None:
            return None if x is None or n_ok == 0 else json_number(x / n_ok)

        out[run.id] = {
            "coder": coder,
            "status": run.status,
            "run_split": run.split,
            "n_valid_total": n_ok,
            "cost_usd": json_number(run.cost_usd),
            "cost_per_valid": per(run.cost_usd),
            "seconds": json_number(seconds) if seconds is not None else None,
            "seconds_per_valid": per(seconds),
            "tokens_in": run.tokens_in,
            "tokens_out": run.tokens_out,
            "tokens_per_valid": per(run.tokens_in + run.tokens_out),
        }
    return out


def _sort_key(sort: str) -> Any:
    other = "accuracy" if sort == "macro_f1" else "macro_f1"

    def key(entry: dict[str, Any]) -> tuple[float, float, int]:
        first, second = entry[sort]["estimate"], entry[other]["estimate"]
        return (
            -(first if first is not None else -math.inf),
            -(second if second is not None else -math.inf),
            entry["run_id"],
        )

    return key


def _comparison(
    a: dict[str, Any], b: dict[str, Any], correct: dict[int, Any], stats: dict[int, Array]
) -> dict[str, Any]:
    ca, cb = correct[a["run_id"]], correct[b["run_id"]]
    a_only, b_only = int((ca & ~cb).sum()), int((~ca & cb).sum())
    diff = stats[a["run_id"]] - stats[b["run_id"]]
    acc = _est(float(diff[0, 0]), diff[1:, 0])
    macro = _est(float(diff[0, 1]), diff[1:, 1])
    lo, hi = acc["low"], acc["high"]
    significant = lo is not None and hi is not None and (lo > 0 or hi < 0)
    return {
        "a": a["run_id"],
        "b": b["run_id"],
        "n_items": int(ca.size),
        "a_only_correct": a_only,
        "b_only_correct": b_only,
        "mcnemar_p": mcnemar_exact(a_only, b_only),
        "accuracy_difference": acc,
        "macro_f1_difference": macro,
        "significant": significant,
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
        f"{a} minus {b}, accuracy on {c['n_items']} items: {interval(d)}; McNemar exact p = "
        f"{fmt_p(c['mcnemar_p'])} (Holm {fmt_p(c['p_holm'])}; {a} alone right on {c['a_only_correct']}, "
        f"{b} alone right on {c['b_only_correct']}): {verdict}"
    )


def _pairs(ranked: list[dict[str, Any]], pairs: str) -> tuple[str, list[tuple[int, int]]]:
    mode = pairs if pairs != "auto" else ("all" if len(ranked) <= ALL_PAIRS_UP_TO else "best")
    n = len(ranked)
    if mode == "all":
        return mode, [(i, j) for i in range(n) for j in range(i + 1, n)]
    return mode, [(0, j) for j in range(1, n)]


_HEADLINE = ("n_items", "accuracy", "macro_f1", "weighted_f1", "kappa", "coverage", "alpha_with_humans")


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
    rest = {k: v for k, v in fig.items() if k not in _HEADLINE and k != "_warnings"}
    return head | {k: fig[k] for k in _HEADLINE} | {k: v for k, v in cost.items() if k != "coder"} | rest


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
    if runs is not None:
        runs = list(dict.fromkeys(runs))
        if not prompts and len(runs) < 2:
            raise InputError(
                f"--runs {','.join(map(str, runs))}: compare needs at least two runs; "
                "for one run use `annotator validate`"
            )
    with project.transaction() as session:
        gold_name = gold.strip() if gold is not None else _default_gold(session)
        data = load_gold_and_runs(session, gold_name, split, runs, codebook)
        matrix = load_codes(session, data["codebook"], split)
        costs = _run_costs(session, [i.id for i in data["runs"]])
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

    infos: list[RunInfo] = data["runs"]
    notes: list[str] = []
    idle = [i for i in infos if not i.answers]
    if idle:
        shown = ", ".join(f"run:{i.id}" for i in idle)
        if runs is not None:
            raise InputError(
                f"--runs: {shown} answered none of the {len(data['doc_ids'])} gold items of the {split} split; "
                "choose the split they labeled with --split"
            )
        notes.append(
            f"left out, no answer on the {split} split's {len(data['doc_ids'])} gold items: {shown} "
            "(choose the split they labeled with --split)"
        )
        infos = [i for i in infos if i.answers]
    scorer = _Scorer(data, matrix, data["gold"], n_boot, seed)
    if not scorer.ref:
        notes.append(f"alpha with the humans is undefined: {NO_HUMANS}")
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
    }
    if prompts:
        result = common | _prompts(project, scorer, infos, costs, bodies, sort, notes)
        kind = "compare_prompts"
    else:
        result = common | _leaderboard(scorer, infos, costs, sort, pairs, notes)
        kind = "compare"
    result["notes"] = notes + _NOTES[: None if not prompts else 2]
    with project.transaction() as session:
        row = Metric(kind=kind, run_id=None, split=split, params=params | {"prompts": prompts}, result=result)
        session.add(row)
        session.flush()
        result["metric_id"] = row.id
    return result


_NOTES = [
    "each run's first answer (repeat 0) to each item is scored; invalid answers count as errors",
    "cost, time and tokens are of the whole run (every document and repeat it labeled; cached answers cost "
    "nothing) divided by its valid answers; time runs from start to finish, pauses of a resumed run included",
    "'significant': the paired bootstrap interval of the accuracy difference excludes zero (not adjusted for "
    "the number of pairs); p_holm is McNemar's exact p adjusted by Holm's method over the pairs shown",
]


def _leaderboard(
    scorer: _Scorer,
    infos: list[RunInfo],
    costs: dict[int, dict[str, Any]],
    sort: str,
    pairs: str,
    notes: list[str],
) -> dict[str, Any]:
    if len(infos) < 2:
        shown = ", ".join(f"run:{i.id}" for i in infos) or "none"
        raise InputError(
            f"compare needs at least two runs with answers on the {scorer.split} split's gold items (found: "
            f"{shown}); label another (`annotator run`, `annotator baseline`) or use `annotator validate`"
        )
    items, item_notes = scorer.common_items(infos, "compare")
    notes += item_notes
    entries, correct, stats, warnings = [], {}, {}, []
    for info in infos:
        fig, correct[info.id], stats[info.id] = scorer.score(info, items)
        warnings = fig["_warnings"]
        entries.append(_entry(info, fig, costs[info.id]))
    entries.sort(key=_sort_key(sort))
    for rank, entry in enumerate(entries, 1):
        entry["rank"] = rank
    mode, index_pairs = _pairs(entries, pairs)
    comparisons = [_comparison(entries[i], entries[j], correct, stats) for i, j in index_pairs]
    for c, p in zip(comparisons, holm([c["mcnemar_p"] for c in comparisons]), strict=True):
        c["mcnemar_p"], c["p_holm"] = _p(c["mcnemar_p"]), _p(p)
        c["line"] = _verdict(c)
    return {
        "mode": "leaderboard",
        "n_items": len(items),
        "humans": scorer.humans_alpha(items),
        "runs": entries,
        "best_run": entries[0]["run_id"],
        "pairs": mode,
        "comparisons": comparisons,
        "warnings": warnings,
    }


def _prompts(
    project: Project,
    scorer: _Scorer,
    infos: list[RunInfo],
    costs: dict[int, dict[str, Any]],
    bodies: dict[str, tuple[str, str, str | None]],
    sort: str,
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
    out: list[dict[str, Any]] = []
    for (book, name), versions in several.items():
        members = [i for v in sorted(versions) for i in versions[v]]
        items, item_notes = scorer.common_items(members, f"{book}/{name}")
        notes += item_notes
        key = _sort_key(sort)
        version_out: list[dict[str, Any]] = []
        ranked: list[dict[str, Any]] = []
        templates = []
        for v in sorted(versions):
            ref = PromptRef(book, name, v)
            body, sha, frozen = bodies[str(ref)]
            entries = []
            for info in versions[v]:
                fig, _, _ = scorer.score(info, items)
                entries.append(_entry(info, fig, costs[info.id]))
            entries.sort(key=key)
            ranked += entries
            version_out.append(
                {"version": v, "prompt": str(ref), "sha256": sha, "frozen_at": frozen, "runs": entries}
            )
            templates.append(parse_prompt(body, ref, project.prompts_dir / ref.filename))
        for rank, entry in enumerate(sorted(ranked, key=key), 1):
            entry["rank"] = rank  # across the prompt's versions
        diffs = [
            {"from": str(a.ref), "to": str(b.ref), "diff": prompt_diff(a, b)} for a, b in pairwise(templates)
        ]
        out.append(
            {
                "prompt": f"{book}/{name}",
                "n_items": len(items),
                "humans": scorer.humans_alpha(items),
                "versions": version_out,
                "diffs": diffs,
            }
        )
    return {"mode": "prompts", "prompts": out}


# -- CSV ----------------------------------------------------------------------------------------------------

CSV_COLUMNS = [
    "prompt_group",
    "rank",
    "run_id",
    "coder",
    "kind",
    "model",
    "prompt",
    "n_items",
    "accuracy",
    "accuracy_low",
    "accuracy_high",
    "macro_f1",
    "macro_f1_low",
    "macro_f1_high",
    "weighted_f1",
    "kappa",
    "kappa_low",
    "kappa_high",
    "coverage",
    "n_valid",
    "n_invalid",
    "n_uncertain",
    "alpha_with_humans",
    "alpha_low",
    "alpha_high",
    "cost_usd",
    "cost_per_valid",
    "seconds",
    "seconds_per_valid",
    "tokens_in",
    "tokens_out",
    "tokens_per_valid",
]


def csv_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat row per run (in prompts mode, per run of each version), in the CSV_COLUMNS."""
    runs: list[tuple[str | None, dict[str, Any]]] = []
    if result["mode"] == "prompts":
        runs = [(p["prompt"], r) for p in result["prompts"] for v in p["versions"] for r in v["runs"]]
    else:
        runs = [(None, r) for r in result["runs"]]
    rows = []
    for group, r in runs:
        row: dict[str, Any] = {"prompt_group": group}
        for key in (
            "rank",
            "run_id",
            "coder",
            "kind",
            "model",
            "prompt",
            "n_items",
            "weighted_f1",
            "coverage",
        ):
            row[key] = r.get(key)
        for key in ("n_valid", "n_invalid", "n_uncertain", "cost_usd", "cost_per_valid", "seconds"):
            row[key] = r.get(key)
        for key in ("seconds_per_valid", "tokens_in", "tokens_out", "tokens_per_valid"):
            row[key] = r.get(key)
        for key, out in (
            ("accuracy", "accuracy"),
            ("macro_f1", "macro_f1"),
            ("kappa", "kappa"),
            ("alpha_with_humans", "alpha"),
        ):
            e = r.get(key) or {}
            row["alpha_with_humans" if out == "alpha" else out] = e.get("estimate")
            row[f"{out}_low"], row[f"{out}_high"] = e.get("low"), e.get("high")
        rows.append(row)
    return rows


def write_csv(result: dict[str, Any], target: str | Path | TextIO) -> None:
    """Write `csv_rows` to a file path, ``-`` (standard output) or an open text stream."""

    def write(handle: TextIO) -> None:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(csv_rows(result))

    if not isinstance(target, str | Path):
        write(target)
        return
    if str(target) == "-":
        write(sys.stdout)
        return
    try:
        with Path(target).open("w", encoding="utf-8", newline="") as handle:
            write(handle)
    except OSError as exc:
        raise InputError(
            f"--csv {target}: cannot write ({exc.strerror or exc}); give a writable file path, or - for the screen"
        ) from exc
