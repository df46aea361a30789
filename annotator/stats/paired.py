"""Agreement figures on shared bootstrap draws: kappa and alpha of a run against the humans, means over
pairs, paired differences and the verdicts read from them (no database; used by `annotator.services.agreement`).

A figure is a dict ``{estimate, low, high, n_units, undefined_share, unreliable, reason}``; below the minimum
overlap its estimate is None and its reason `too_few(n)`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
from numpy.typing import NDArray

from annotator.stats.intervals import estimate, too_few
from annotator.stats.reliability import (
    Alpha,
    alpha_report,
    cohen_kappa,
)

Array = NDArray[np.float64]


def _disagreement_weights(k: int, weights: str | None) -> Array:
    i = np.arange(k, dtype=float)
    d = np.abs(i[:, None] - i[None, :])
    if weights == "linear":
        return d
    if weights == "quadratic":
        return d**2
    return (d > 0).astype(float)


def _kappa_from_confusion(conf: Array, w: Array) -> Array:
    """Cohen's kappa of (batched) confusion matrices ... x k x k: 1 - sum(w O) / sum(w E), NaN if undefined."""
    n = conf.sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = conf / n[..., None, None]
        expected = p.sum(axis=-1)[..., :, None] * p.sum(axis=-2)[..., None, :]
        observed_d = (p * w).sum(axis=(-2, -1))
        expected_d = (expected * w).sum(axis=(-2, -1))
        kappa = 1.0 - observed_d / expected_d
    return np.where((n > 0) & (expected_d > 0), kappa, np.nan)


def _blank(n_units: int, reason: str | None) -> dict[str, Any]:
    return {
        "estimate": None,
        "low": None,
        "high": None,
        "n_units": n_units,
        "undefined_share": None,
        "unreliable": False,
        "reason": reason,
    }


def _figure(point: float, reps: Array, n_units: int, min_units: int, undefined: str | None) -> dict[str, Any]:
    """A figure as every one is reported: {estimate, low, high, n_units, undefined_share, unreliable, reason}.

    Below ``min_units`` units it is "too few units (n)" with no number; ``undefined`` says why it has none."""
    if n_units < min_units:
        return _blank(n_units, undefined if n_units == 0 and undefined else too_few(n_units, min_units))
    out = _blank(n_units, None) | estimate(point, reps)
    if out["estimate"] is None:
        out["reason"] = undefined or "undefined"
    return out


def _shown(fig: dict[str, Any], reps: Array) -> Array:
    """The replicates of a figure, NaN when the figure itself is not shown (so no difference uses them)."""
    return reps if fig["estimate"] is not None else np.full(reps.shape, np.nan)


class _Stats:
    """Alpha and kappas on one codes matrix (coders x units), each with replicates on the same resampled
    units: a paired difference of two of its figures is computed replicate by replicate."""

    def __init__(
        self,
        codes: Array,
        k: int,
        level: str,
        values: Sequence[float],
        n_boot: int,
        seed: int,
        min_units: int,
    ) -> None:
        self.codes = codes
        self.level = level
        self.k = k
        self.n_boot = n_boot
        self.min_units = min_units
        n_units = codes.shape[1]
        idx = np.random.default_rng(seed).integers(0, max(n_units, 1), size=(n_boot, n_units))
        flat = (idx + n_units * np.arange(n_boot)[:, None]).ravel()
        self.weights = np.bincount(flat, minlength=n_boot * n_units).reshape(n_boot, n_units).astype(float)
        self.kappa_weights: Literal["linear", "quadratic"] | None = cast(
            Any, {"nominal": None, "ordinal": "linear"}.get(level, "quadratic")
        )
        self.w = _disagreement_weights(self.k, self.kappa_weights)
        self.values: list[float] | None = None if level == "nominal" else list(values)
        self.alpha_values = list(values) if self.values is not None else [float(i) for i in range(k)]

    def nan(self) -> Array:
        return np.full(self.n_boot, np.nan)

    def alpha_full(self, rows: Sequence[int]) -> tuple[dict[str, Any], float, Array]:
        """Alpha of some rows as a figure (n: pairable units, with pairable values), its unrounded point and
        its replicates (all NaN when the figure is not shown)."""
        sub = self.codes[list(rows)]
        rep = alpha_report(sub, cast(Any, self.level), self.alpha_values)
        stat = Alpha(cast(Any, self.level), self.alpha_values, list(rows))
        reps = stat.replicates(self.codes, self.weights) if math.isfinite(rep.alpha) else self.nan()
        fig = _figure(rep.alpha, reps, rep.pairable_units, self.min_units, rep.reason)
        fig["pairable_values"] = rep.pairable_values
        return fig, rep.alpha, _shown(fig, reps)

    def alpha(self, rows: Sequence[int]) -> tuple[dict[str, Any], Array]:
        fig, _, reps = self.alpha_full(rows)
        return fig, reps

    def kappa(self, a: Array, b: Array) -> tuple[float, Array, int]:
        """Point kappa (scikit-learn), replicates (batched), and the number of units both coded."""
        both = np.isfinite(a) & np.isfinite(b)
        n = int(both.sum())
        point = cohen_kappa(a, b, weights=self.kappa_weights, n_categories=self.k)
        if not math.isfinite(point):
            return math.nan, self.nan(), n
        cell = np.where(both, np.nan_to_num(a) * self.k + np.nan_to_num(b), -1).astype(np.int64)
        onehot = np.zeros((a.size, self.k * self.k))
        onehot[np.nonzero(both)[0], cell[both]] = 1.0
        conf = (self.weights @ onehot).reshape(-1, self.k, self.k)
        return point, _kappa_from_confusion(conf, self.w), n

    def kappa_figure(self, a: Array, b: Array, undefined: str) -> tuple[dict[str, Any], Array]:
        p, r, n = self.kappa(a, b)
        fig = _figure(p, r, n, self.min_units, undefined if n else "no unit coded by both")
        return fig, _shown(fig, r)


@dataclass
class _Pair:
    """One pair's figure inside a mean over pairs."""

    point: float
    reps: Array
    n_units: int
    covered: NDArray[np.bool_]  # the units both coded


def _mean_over_pairs(
    pairs: list[_Pair], min_units: int, n_boot: int, none_reason: str
) -> tuple[dict[str, Any], Array]:
    """The mean of pairwise figures over the pairs with at least ``min_units`` shared units and a defined
    figure; its n is the units covered by those pairs. Pairs left out are counted, never averaged in."""
    used = [p for p in pairs if p.n_units >= min_units and math.isfinite(p.point)]
    too_small = [p for p in pairs if p.n_units < min_units]
    extra = {"n_pairs": len(used), "n_pairs_left_out": len(pairs) - len(used)}
    if not used:
        if not pairs:
            reason = none_reason
        elif too_small:
            biggest = max(p.n_units for p in pairs)
            reason = f"{too_few(biggest, min_units)} for every pair"
        else:
            reason = "undefined for every pair (no variation in the labels)"
        n = max((p.n_units for p in pairs), default=0)
        return _blank(n, reason) | extra, np.full(n_boot, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a replicate where every pair is NaN
        reps = np.nanmean(np.vstack([p.reps for p in used]), axis=0)
    n_units = int(np.any(np.vstack([p.covered for p in used]), axis=0).sum())
    fig = _figure(float(np.mean([p.point for p in used])), reps, n_units, 0, "undefined")
    return fig | extra, reps


def _difference(
    a: dict[str, Any], a_reps: Array, b: dict[str, Any], b_reps: Array, n_units: int, min_units: int
) -> dict[str, Any]:
    """a - b on the same draws: a figure only when both are."""
    if a["estimate"] is None or b["estimate"] is None:
        reason = a["reason"] if a["estimate"] is None else b["reason"]
        return _blank(n_units, reason)
    point = (a["estimate"] or 0.0) - (b["estimate"] or 0.0)
    return _figure(point, a_reps - b_reps, n_units, min_units, "undefined")


def _fmt(x: float | None) -> str:
    return "NaN" if x is None else f"{x:.2f}"


def _span(e: dict[str, Any]) -> str:
    if e["estimate"] is None:
        reason = e.get("reason") or "undefined"
        return reason if reason.startswith("too few") else "NaN"
    if e["low"] is None:
        return _fmt(e["estimate"])
    text = f"{_fmt(e['estimate'])} [{_fmt(e['low'])}, {_fmt(e['high'])}]"
    if e.get("unreliable"):
        text += (
            f" (interval unreliable: {100 * (e.get('undefined_share') or 0):.0f}% of replicates undefined)"
        )
    return text


def yardstick_verdict(diff: dict[str, Any], margin: float) -> str:
    """Non-inferiority on the paired difference (run minus humans): its interval against -margin."""
    if diff["estimate"] is None or diff["low"] is None or diff["high"] is None or diff.get("unreliable"):
        return "inconclusive"
    if diff["low"] > -margin:
        return "at the human level"
    if diff["high"] < -margin:
        return "below the human level"
    return "inconclusive"


def compare_verdict(a: str, b: str, diff: dict[str, Any]) -> str:
    """The verdict on A minus B (mean pairwise kappa with the humans): its interval against zero."""
    lo = diff["low"] if diff["low"] is not None else diff["estimate"]
    hi = diff["high"] if diff["high"] is not None else diff["estimate"]
    if lo > 0:
        return f"{a} agrees more with the humans than {b}"
    if hi < 0:
        return f"{a} agrees less with the humans than {b}"
    return f"no clear difference between {a} and {b} in agreement with the humans"
