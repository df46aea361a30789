"""Each run's agreement figures against the humans, on the units it coded, and runs against one another on
the units both coded (see `annotator.stats.agreement`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict, cast

import numpy as np
from numpy.typing import NDArray

from annotator.stats.agreement_matrix import Context, Figure
from annotator.stats.agreement_text import Verdict, cannot_compare_line, comparison_line, yardstick_line
from annotator.stats.intervals import json_number, too_few
from annotator.stats.paired import (
    _blank,
    _difference,
    _mean_over_pairs,
    _Pair,
    _Stats,
    compare_verdict,
    yardstick_verdict,
)
from annotator.stats.reliability import majority

__all__ = ["ByHuman", "Comparison", "PooledAlpha", "RunEntry", "Yardstick", "comparison", "run_entry"]

Array = NDArray[np.float64]


class ByHuman(TypedDict):
    """A run against one human, on the units both coded."""

    alpha: float | None  # the pair's alpha (None: too few units, or undefined)
    kappa: float | None  # the pair's kappa (None: fewer than min_units units)
    n_units: int  # units both coded
    reason: str | None  # why kappa is None


class PooledAlpha(TypedDict):
    """(c) The alpha of the humans with the run added, beside the humans alone on the same units."""

    label: str  # "reliability of the humans with the run added"
    with_run: Figure
    humans_only: Figure
    difference: Figure  # with_run minus humans_only, paired
    n_units: int  # the units the run coded


class Yardstick(TypedDict):
    """(d) The run's mean kappa with each human minus the humans' own, paired, against the margin."""

    verdict: Verdict
    margin: float  # the non-inferiority margin (kappa points)
    n_units: int  # units the figures are on
    difference: Figure  # run_kappa minus human_kappa
    run_kappa: Figure  # the run's mean kappa with each human
    human_kappa: Figure  # the humans' mean pairwise kappa on the same units
    reason: str | None  # why the figures do not decide it (None: they do)
    rule: str  # the yardstick's rule in one sentence
    line: str  # the verdict in one line, as printed


class RunEntry(TypedDict):
    """One run (or repeat) against the humans, on the units it was asked and answered validly."""

    coder: str  # run:7, run:7#1 for repeat 1
    kind: str  # llm or baseline
    run_id: int | None
    repeat: int | None
    model: str | None
    n_asked: int  # units it was asked
    n_codes: int  # valid answers
    n_invalid: int  # invalid answers (left out unless invalid_as_category)
    n_uncertain: int  # uncertain answers
    n_units: int  # units it coded: asked and answered validly
    alpha_vs_majority: Figure  # (a) vs the human majority label, with pairable_values
    kappa_vs_majority: Figure  # (a) with n_ties_left_out (units whose majority is tied)
    mean_alpha_vs_humans: Figure  # (b) the mean of its alpha with each human, with n_pairs
    mean_kappa_vs_humans: Figure  # (b) the mean of its kappa with each human, with n_pairs
    by_human: dict[str, ByHuman]  # human coder name -> the pair's figures, in coder order
    pooled_alpha: PooledAlpha  # (c)
    yardstick: Yardstick  # (d)


class Comparison(TypedDict):
    """Run A against run B on the units both coded: A's mean kappa with each human minus B's, paired."""

    a: str  # coder A's name
    b: str  # coder B's name
    n_units: int  # units both coded
    mean_kappa_a: Figure
    mean_kappa_b: Figure
    difference: Figure  # mean_kappa_a minus mean_kappa_b
    share_le_zero: float | None  # share of bootstrap replicates of the difference <= 0
    verdict: str  # "<A> agrees more with the humans than <B>", "... less ...", "no clear difference ...",
    # or "undetermined"
    line: str  # the comparison in one line, as printed


@dataclass
class _RunView:
    """A run's units (asked and validly answered): the humans' rows, the run's row and the majority's."""

    cols: NDArray[np.intp]
    view: Array  # humans (0..h-1), the run (h), the human majority (h + 1)
    n_ties: int
    s: _Stats

    @property
    def run(self) -> int:
        return self.view.shape[0] - 2

    @property
    def majority(self) -> int:
        return self.view.shape[0] - 1


def _run_view(ctx: Context, i: int) -> _RunView:
    m, ref = ctx.m, ctx.ref
    codes = m.codes
    cols = np.nonzero(m.asked_row(i) & np.isfinite(codes[i]))[0]
    k = len(m.categories)
    maj, n_ties = majority(codes[ref][:, cols], k) if ref else (np.full(cols.size, np.nan), 0)
    view = np.vstack([codes[ref][:, cols], codes[i][cols][None, :], maj[None, :]])
    return _RunView(cols, view, n_ties, ctx.stats(view))


def run_entry(ctx: Context, i: int, rule: str) -> RunEntry:
    """A run's figures against the humans, on the units it was asked and answered (validly)."""
    info = ctx.m.coders[i]
    rv = _run_view(ctx, i)
    alpha_mj, kappa_mj = _vs_majority(ctx, rv)
    (mean_a, mean_k, by_human), mk_reps = _vs_each_human(ctx, rv)
    return RunEntry(
        coder=info.name,
        kind=info.kind,
        run_id=info.run_id,
        repeat=info.repeat,
        model=info.model,
        n_asked=int(ctx.m.asked_row(i).sum()),
        n_codes=info.n_codes,
        n_invalid=info.n_invalid,
        n_uncertain=info.n_uncertain,
        n_units=int(rv.cols.size),
        alpha_vs_majority=alpha_mj,
        kappa_vs_majority=kappa_mj,
        mean_alpha_vs_humans=mean_a,
        mean_kappa_vs_humans=mean_k,
        by_human=by_human,
        pooled_alpha=_pooled_alpha(ctx, rv),
        yardstick=_yardstick(ctx, rv, info.name, mean_k, mk_reps, rule),
    )


def _no_reference(ctx: Context) -> str | None:
    """Why a run has no figure against the humans: there is no reference coder at all."""
    return ctx.no_humans if not ctx.ref else None


def _vs_majority(ctx: Context, rv: _RunView) -> tuple[Figure, Figure]:
    """(a) alpha and kappa between the run and the human majority label (ties left out and counted)."""
    no_ref = _no_reference(ctx)
    if no_ref is not None:
        blank = _blank(0, no_ref)
        return blank | {"pairable_values": 0}, blank | {"n_ties_left_out": 0}
    s, view = rv.s, rv.view
    a_mj, _ = s.alpha([rv.run, rv.majority])
    k_mj, _ = s.kappa_figure(
        view[rv.run],
        view[rv.majority],
        "no variation in the labels of the run and the majority: kappa is undefined",
    )
    if a_mj["estimate"] is None and a_mj["n_units"] == 0 and a_mj["reason"] and "pairable" in a_mj["reason"]:
        a_mj["reason"] = "no unit coded by both the run and the human majority"
    return a_mj, k_mj | {"n_ties_left_out": rv.n_ties}


def _vs_each_human(ctx: Context, rv: _RunView) -> tuple[tuple[Figure, Figure, dict[str, ByHuman]], Array]:
    """(b) the run's pairwise alpha and kappa with each human, and their means: (mean alpha, mean kappa,
    by human), with the mean kappa's replicates."""
    s, view, run, min_units = rv.s, rv.view, rv.run, ctx.min_units
    a_pairs, k_pairs, by_human = [], [], {}
    for x, j in enumerate(ctx.ref):
        a_fig, a_point, a_reps = s.alpha_full([run, x])
        kp, kr, kn = s.kappa(view[run], view[x])
        covered = np.isfinite(view[run]) & np.isfinite(view[x])
        a_pairs.append(_Pair(a_point, a_reps, a_fig["n_units"], covered))
        k_pairs.append(_Pair(kp, kr, kn, covered))
        by_human[ctx.m.coders[j].name] = ByHuman(
            alpha=a_fig["estimate"],
            kappa=json_number(kp) if kn >= min_units else None,
            n_units=kn,
            reason=None if kn >= min_units else too_few(kn, min_units),
        )
    none_reason = ctx.no_humans or "no human coder"
    mean_a, _ = _mean_over_pairs(a_pairs, min_units, ctx.n_boot, none_reason)
    mean_k, mk_reps = _mean_over_pairs(k_pairs, min_units, ctx.n_boot, none_reason)
    return (mean_a, mean_k, by_human), mk_reps


def _pooled_alpha(ctx: Context, rv: _RunView) -> PooledAlpha:
    """(c) the pooled figure, labelled for what it is, beside the humans alone on the same units."""
    label = "reliability of the humans with the run added"
    no_ref = _no_reference(ctx)
    if no_ref is not None:
        return PooledAlpha(
            label=label,
            with_run=_blank(0, no_ref),
            humans_only=_blank(0, no_ref),
            difference=_blank(0, no_ref),
            n_units=int(rv.cols.size),
        )
    h = len(ctx.ref)
    with_run, w_reps = rv.s.alpha([*range(h), rv.run])
    humans_only, h_reps = rv.s.alpha(list(range(h)))
    n = min(with_run["n_units"], humans_only["n_units"])
    return PooledAlpha(
        label=label,
        with_run=with_run,
        humans_only=humans_only,
        difference=_difference(with_run, w_reps, humans_only, h_reps, n, ctx.min_units),
        n_units=int(rv.cols.size),
    )


def _yardstick(ctx: Context, rv: _RunView, name: str, mean_k: Figure, mk_reps: Array, rule: str) -> Yardstick:
    """(d) the yardstick: the run's mean kappa with each human minus the humans' own, paired, same units."""
    s, view, h = rv.s, rv.view, len(ctx.ref)
    hh = [
        _Pair(*s.kappa(view[x], view[y]), np.isfinite(view[x]) & np.isfinite(view[y]))
        for x in range(h)
        for y in range(x + 1, h)
    ]
    human_k, hk_reps = _mean_over_pairs(
        hh, ctx.min_units, ctx.n_boot, ctx.no_humans or "no pair of human coders"
    )
    n_used = mean_k["n_units"] if mean_k["estimate"] is not None else int(rv.cols.size)
    diff = _difference(mean_k, mk_reps, human_k, hk_reps, n_used, ctx.min_units)
    margin = ctx.settings.margin
    verdict, why = _yardstick_outcome(ctx.no_humans, mean_k, human_k, diff, margin)
    return Yardstick(
        verdict=verdict,
        margin=margin,
        n_units=n_used,
        difference=diff,
        run_kappa=mean_k,
        human_kappa=human_k,
        reason=why,
        rule=rule,
        line=yardstick_line(name, verdict, why, n_used, mean_k, human_k, diff, margin),
    )


def _yardstick_outcome(
    no_humans: str | None, run_kappa: Figure, human_kappa: Figure, diff: Figure, margin: float
) -> tuple[Verdict, str | None]:
    """The verdict (one of VERDICTS) and, when the figures do not decide it, why."""
    if no_humans is not None:
        return "undetermined", no_humans
    if run_kappa["estimate"] is None or human_kappa["estimate"] is None:
        why = run_kappa["reason"] if run_kappa["estimate"] is None else human_kappa["reason"]
        return ("inconclusive" if why and "too few" in why else "undetermined"), why
    return cast(Verdict, yardstick_verdict(diff, margin)), None


# -- runs against one another -------------------------------------------------------------------------------


def comparison(ctx: Context, i: int, j: int) -> Comparison:
    """Run A against run B on the units both coded: A's mean kappa with each human minus B's, paired."""
    codes, ref, min_units = ctx.m.codes, ctx.ref, ctx.min_units
    a_name, b_name = ctx.m.coders[i].name, ctx.m.coders[j].name
    cols = np.nonzero(np.isfinite(codes[i]) & np.isfinite(codes[j]))[0]
    h = len(ref)
    view = np.vstack([codes[ref][:, cols], codes[i][cols][None, :], codes[j][cols][None, :]])
    s = ctx.stats(view)
    (fa, ra), (fb, rb) = (ctx.mean_kappa_with_humans(s, view, row) for row in (h, h + 1))
    n = int(cols.size)
    delta = _difference(fa, ra, fb, rb, n, min_units)
    if n < min_units:
        delta = _blank(n, too_few(n, min_units))
    ok = (ra - rb)[np.isfinite(ra - rb)]
    share = json_number(float((ok <= 0).mean())) if ok.size and delta["estimate"] is not None else None
    if delta["estimate"] is None:
        verdict = "undetermined"
        line = cannot_compare_line(a_name, b_name, _why_not_compared(ctx, n, delta))
    else:
        verdict = compare_verdict(a_name, b_name, delta)
        line = comparison_line(a_name, b_name, n, delta, share, verdict)
    return Comparison(
        a=a_name,
        b=b_name,
        n_units=n,
        mean_kappa_a=fa,
        mean_kappa_b=fb,
        difference=delta,
        share_le_zero=share,
        verdict=verdict,
        line=line,
    )


def _why_not_compared(ctx: Context, n: int, delta: Figure) -> str | None:
    if not ctx.ref:
        return ctx.no_humans
    if n == 0:
        return "no unit coded by both"
    return delta["reason"] or "no kappa with the humans for one of them"
