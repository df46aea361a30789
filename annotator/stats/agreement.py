"""Every figure of `annotator agreement` on a coders x units code matrix (no database, no project).

The matrix is anything shaped like `annotator.store.codes.CodeMatrix` (``MatrixLike``); the caller checks the
settings and says which rows are reference coders (humans, a named gold coder), which are runs, and which
pairs of runs to compare. Reported, with seeded unit-bootstrap intervals (units are resampled):

- human-human: Krippendorff's alpha, percent agreement, Fleiss' kappa, Gwet's AC1 and the mean pairwise
  Cohen's kappa among the reference coders;
- each LLM or baseline run, and each repeat of it, on the units the run coded (its asked set, where it gave
  a valid answer; a unit outside its asked set counts neither for nor against it):
  (a) alpha and kappa between the run and the human majority label (plurality; tied units are left out and
  counted), (b) the mean of the run's pairwise alpha and kappa with each human, (c) the pooled alpha of the
  humans with the run added, beside the humans-only alpha on the same units and their difference, and
  (d) the yardstick: a paired test of the run against the humans on the same units.
- within-run stability: alpha over the repeats of a run, when two or more are present;
- a pairwise kappa matrix of all coders;
- comparisons of runs (and repeats) with one another, on the units both coded: A's mean pairwise kappa with
  each human minus B's, with a paired bootstrap interval, the share of replicates <= 0 and a verdict.

Within one run's figures every statistic uses the same bootstrap draws of that run's units, so the paired
differences are consistent. The modules: `agreement_matrix` (what is read: the matrix, the settings),
`agreement_runs` (each run's figures and run-vs-run comparisons), `agreement_text` (the yardstick's rule and
each verdict's words). The records of the result are TypedDicts (`CoderEntry`, `Humans`, `RunEntry`,
`Stability`, `Comparison`, `Pairwise`); the result itself is a dict, typed by the service that returns it
(`annotator.services.agreement.Agreement`).
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

import numpy as np
from numpy.typing import NDArray

from annotator.stats.agreement_matrix import CoderLike, Context, Figure, MatrixLike, Settings
from annotator.stats.agreement_runs import (
    ByHuman,
    Comparison,
    PooledAlpha,
    RunEntry,
    Yardstick,
    comparison,
    run_entry,
)
from annotator.stats.agreement_text import (
    MARGIN,
    VERDICTS,
    YARDSTICK_RULE,
    Verdict,
    no_humans_reason,
    yardstick_rule,
)
from annotator.stats.intervals import CI, json_number
from annotator.stats.paired import _blank, _mean_over_pairs, _Pair, _Stats
from annotator.stats.reliability import cohen_kappa, fleiss_kappa, gwet_ac1, percent_agreement

__all__ = [
    "MARGIN",
    "VERDICTS",
    "YARDSTICK_RULE",
    "ByHuman",
    "CoderEntry",
    "CoderLike",
    "Comparison",
    "Figure",
    "Humans",
    "MatrixLike",
    "Pairwise",
    "PooledAlpha",
    "RunEntry",
    "Settings",
    "Stability",
    "Treated",
    "Verdict",
    "Yardstick",
    "agreement_figures",
    "yardstick_rule",
]

Array = NDArray[np.float64]
Treated = Literal["missing", "category"]  # how uncertain or invalid answers count: as missing, or a category


class CoderEntry(TypedDict):
    """One row of the matrix: a coder (a human, a gold coder, a run or one repeat of it) and its codes."""

    name: str  # alice, run:7, run:7#1 for repeat 1
    kind: str  # human, gold, llm, baseline
    run_id: int | None
    repeat: int | None
    n_asked: int | None  # units a run was asked (None: a human or gold coder)
    n_codes: int  # valid codes on the split
    n_invalid: int
    n_uncertain: int


class Humans(TypedDict):
    """Human-human reliability among the reference coders, on every unit of the matrix."""

    coders: list[str]  # the reference coders' names
    n_coders: int
    alpha: Figure  # Krippendorff's alpha, with pairable_values
    reason: str | None  # why there is no human-human figure, or why alpha is None (None: there is one)
    n_units: int  # pairable units (alpha's)
    percent_agreement: float | None  # None below min_units
    fleiss_n_units: int  # units coded by every reference coder (Fleiss' kappa's)
    fleiss_kappa: float | None  # None below min_units
    gwet_ac1: float | None  # None below min_units
    mean_pairwise_kappa: Figure  # the mean of Cohen's kappa over pairs of reference coders, with n_pairs


class Stability(TypedDict):
    """A run's alpha across its repeats (runs with two or more)."""

    run_id: int
    coders: list[str]  # the repeats' coder names
    alpha: Figure


class Pairwise(TypedDict):
    """Cohen's kappa of every pair of coders, point estimates on the units both coded (coder order)."""

    coders: list[str]
    kappa: list[list[float | None]]  # None: fewer than min_units units in common (the diagonal: 1.0, or None)
    n_units: list[list[int]]  # units both coded (the diagonal: the coder's codes)


def agreement_figures(
    m: MatrixLike,
    ref: list[int],
    runs: list[int],
    pairs: list[tuple[int, int]],
    settings: Settings,
) -> dict[str, Any]:
    """Every figure of `agreement` on ``m``: ``ref`` are the reference rows (humans, a named gold coder),
    ``runs`` the run rows, ``pairs`` the pairs of run rows to compare. The settings are taken as checked."""
    k = len(m.categories)
    values = m.values if len(m.values) == k else [float(i) for i in range(k)]
    ctx = Context(m, ref, settings, values, no_humans_reason(m.coders, ref, m.unused_gold))
    s = ctx.stats(m.codes)
    rule = yardstick_rule(settings.margin, settings.min_units)
    return _result(
        ctx,
        s,
        humans=_humans(ctx, s),
        run_out=[run_entry(ctx, i, rule) for i in runs],
        stability=_stability(ctx, s, runs),
        comparisons=[comparison(ctx, i, j) for i, j in pairs],
        pairwise=_pairwise(ctx, s),
        rule=rule,
    )


def _result(
    ctx: Context,
    s: _Stats,
    humans: Humans,
    run_out: list[RunEntry],
    stability: list[Stability],
    comparisons: list[Comparison],
    pairwise: Pairwise,
    rule: str,
) -> dict[str, Any]:
    """The JSON-ready result: what was computed on what, then the figures and the notes (the fields of
    `annotator.services.agreement.Agreement`, in its order, less ``metric_id``)."""
    m, st = ctx.m, ctx.settings
    return {
        "codebook": m.codebook,
        "codebook_versions": m.codebook_versions,
        "split": m.split,
        "level": st.level,
        "values": None if st.level == "nominal" else dict(zip(m.categories, ctx.values, strict=True)),
        "values_given": m.values_given,
        "kappa_weights": s.kappa_weights,
        "categories": m.categories,
        "uncertain": "category" if m.uncertain_as_category else "missing",
        "invalid": "category" if m.invalid_as_category else "missing",
        "uncertain_label": m.uncertain_label,
        "uncertain_note": m.uncertain_note,
        "n_boot": st.n_boot,
        "seed": st.seed,
        "ci": CI,
        "min_units": st.min_units,
        "margin": st.margin,
        "n_units": int(m.codes.shape[1]),
        "coders": [
            CoderEntry(
                name=c.name,
                kind=c.kind,
                run_id=c.run_id,
                repeat=c.repeat,
                n_asked=c.n_asked,
                n_codes=c.n_codes,
                n_invalid=c.n_invalid,
                n_uncertain=c.n_uncertain,
            )
            for c in m.coders
        ],
        "unused_gold": m.unused_gold,
        "humans": humans,
        "runs": run_out,
        "stability": stability,
        "comparisons": comparisons,
        "pairwise": pairwise,
        "yardstick_rule": rule,
        "notes": _notes(m, st.level),
    }


def _notes(m: MatrixLike, level: str) -> list[str]:
    notes: list[str] = [m.uncertain_note]
    if not m.invalid_as_category:
        notes.append(
            "invalid answers are left out (missing): a run's figures use the units where it gave a valid "
            "answer, and n_invalid is reported beside them; --invalid-as-category counts them as a category"
        )
    if len(m.coders) < 2:
        notes.append("only one coder: agreement needs at least two")
    if level == "interval" and m.values_given is False:
        notes.append("interval alpha uses equally spaced label positions 0..k-1 (no label has a `value:`)")
    return notes


# -- human-human, on every unit of the matrix ---------------------------------------------------------------


def _humans(ctx: Context, s: _Stats) -> Humans:
    m, ref, min_units, no_humans = ctx.m, ctx.ref, ctx.min_units, ctx.no_humans
    codes = m.codes
    sub = codes[ref] if ref else np.empty((0, codes.shape[1]))
    alpha = (_blank(0, no_humans) | {"pairable_values": 0}) if no_humans is not None else s.alpha(ref)[0]
    n_pairable = alpha["n_units"]
    enough = no_humans is None and n_pairable >= min_units
    fleiss_n = int(np.isfinite(sub).all(axis=0).sum()) if len(ref) >= 2 else 0
    h_pairs = []
    for x, i in enumerate(ref):
        for j in ref[x + 1 :]:
            p, r, n = s.kappa(codes[i], codes[j])
            h_pairs.append(_Pair(p, r, n, np.isfinite(codes[i]) & np.isfinite(codes[j])))
    mean_kappa, _ = _mean_over_pairs(h_pairs, min_units, ctx.n_boot, no_humans or "no pair of human coders")
    return Humans(
        coders=[m.coders[i].name for i in ref],
        n_coders=len(ref),
        alpha=alpha,
        reason=no_humans or alpha["reason"],
        n_units=n_pairable,
        percent_agreement=json_number(percent_agreement(sub)) if enough else None,
        fleiss_n_units=fleiss_n,
        fleiss_kappa=json_number(fleiss_kappa(sub)) if enough and fleiss_n >= min_units else None,
        gwet_ac1=json_number(gwet_ac1(sub)) if enough else None,
        mean_pairwise_kappa=mean_kappa,
    )


# -- within-run stability across repeats, and the pairwise kappa matrix -------------------------------------


def _stability(ctx: Context, s: _Stats, runs: list[int]) -> list[Stability]:
    """Alpha over the repeats of each run with two or more of them."""
    coders = ctx.m.coders
    by_run: dict[int, list[int]] = {}
    for i in runs:
        rid = coders[i].run_id
        if rid is not None:
            by_run.setdefault(rid, []).append(i)
    stability: list[Stability] = []
    for rid, rows in by_run.items():
        if len(rows) < 2:
            continue
        a, _ = s.alpha(rows)
        stability.append(Stability(run_id=rid, coders=[coders[i].name for i in rows], alpha=a))
    return stability


def _pairwise(ctx: Context, s: _Stats) -> Pairwise:
    """Cohen's kappa of every pair of coders (point estimates, each on the units both coded)."""
    m = ctx.m
    codes, names, k = m.codes, m.names, len(m.categories)
    pair_k: list[list[float | None]] = [[None] * len(names) for _ in names]
    pair_n: list[list[int]] = [[0] * len(names) for _ in names]
    for i in range(len(names)):
        pair_n[i][i] = m.coders[i].n_codes
        pair_k[i][i] = 1.0 if m.coders[i].n_codes else None
        for j in range(i + 1, len(names)):
            n_ij = int((np.isfinite(codes[i]) & np.isfinite(codes[j])).sum())
            kij = cohen_kappa(codes[i], codes[j], weights=s.kappa_weights, n_categories=k)
            pair_k[i][j] = pair_k[j][i] = json_number(kij) if n_ij >= ctx.min_units else None
            pair_n[i][j] = pair_n[j][i] = n_ij
    return Pairwise(coders=names, kappa=pair_k, n_units=pair_n)
