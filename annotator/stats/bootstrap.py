"""Bootstrap intervals that resample units (see `annotator.stats.reliability` for why units): `bootstrap`
(estimate, percentile interval, replicates of any statistic) and `paired_bootstrap_difference` (two
statistics on the same draws), with `Alpha`, Krippendorff's alpha as a statistic with a fast path (each
unit's coincidences computed once, a replicate is one weighted sum). Draws come from a seeded
``numpy.random.Generator``. Pure numpy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from annotator.stats.alpha import (
    Level,
    _alpha_from_coincidence,
    _check_level,
    _coincidences,
    krippendorff_alpha,
)
from annotator.stats.matrix import Array, _as_codes, _unit_counts


@dataclass(frozen=True)
class Alpha:
    """Krippendorff's alpha as a bootstrap statistic (optionally on some coders' rows); takes the fast path."""

    level: Level = "nominal"
    values: Sequence[float] | None = None
    rows: Sequence[int] | None = None

    def __call__(self, codes: ArrayLike) -> float:
        arr = np.asarray(codes, dtype=float)
        return krippendorff_alpha(arr if self.rows is None else arr[list(self.rows)], self.level, self.values)

    def replicates(self, codes: Array, weights: Array) -> Array:
        """Alpha for each row of unit weights (multinomial counts): each unit's coincidences are computed
        once, so a replicate is one weighted sum instead of a recount."""
        arr = _as_codes(codes if self.rows is None else codes[list(self.rows)])
        counts = _unit_counts(arr, None if self.values is None else len(self.values))
        vals = _check_level(self.level, self.values, counts.shape[1])
        if arr.shape[0] < 2:
            return np.full(weights.shape[0], np.nan)
        k = counts.shape[1]
        o = (weights @ _coincidences(counts).reshape(-1, k * k)).reshape(-1, k, k)
        return _alpha_from_coincidence(o, self.level, vals)


Statistic = Callable[[Array], float]


class BootstrapResult(NamedTuple):
    estimate: float
    low: float
    high: float
    replicates: Array


class PairedDifference(NamedTuple):
    difference: float
    low: float
    high: float
    share_le_zero: float
    replicates: Array


def _draws(n_units: int, n: int, seed: int) -> NDArray[np.int64]:
    """n resamples of unit indices with replacement, from a seeded Generator (the same for every statistic)."""
    return np.random.default_rng(seed).integers(0, n_units, size=(n, n_units))


def _replicates(codes: Array, statistic: Statistic, idx: NDArray[np.int64]) -> Array:
    if isinstance(statistic, Alpha):
        n, n_units = idx.shape
        flat = (idx + n_units * np.arange(n)[:, None]).ravel()
        weights = np.bincount(flat, minlength=n * n_units).reshape(n, n_units).astype(float)
        return statistic.replicates(codes, weights)
    return np.array([statistic(codes[:, row]) for row in idx], dtype=float)


def _interval(reps: Array, ci: float) -> tuple[float, float]:
    """Percentile interval over the defined replicates (a replicate can be NaN, e.g. no variation drawn)."""
    if not 0 < ci < 1:
        raise ValueError(f"ci must be between 0 and 1, got {ci}")
    ok = reps[np.isfinite(reps)]
    if ok.size == 0:
        return np.nan, np.nan
    lo, hi = np.percentile(ok, [100 * (1 - ci) / 2, 100 * (1 + ci) / 2])
    return float(lo), float(hi)


def bootstrap(
    codes: ArrayLike, statistic: Statistic, n: int = 1000, seed: int = 0, ci: float = 0.95
) -> BootstrapResult:
    """Point estimate, percentile interval and replicates, resampling units (columns) with replacement.

    ``statistic`` takes a coders x units matrix; pass `Alpha(...)` for the fast path, any callable otherwise
    (e.g. ``lambda m: cohen_kappa(m[0], m[1])``). NaN replicates are kept in ``replicates`` and left out of
    the interval.
    """
    arr = _as_codes(codes)
    reps = _replicates(arr, statistic, _draws(arr.shape[1], n, seed))
    return BootstrapResult(float(statistic(arr)), *_interval(reps, ci), reps)


def paired_bootstrap_difference(
    codes: ArrayLike, stat_a: Statistic, stat_b: Statistic, n: int = 1000, seed: int = 0, ci: float = 0.95
) -> PairedDifference:
    """stat_a - stat_b on the same resampled units, e.g. run v2's vs run v1's alpha with the humans.

    ``codes`` holds every coder involved (units aligned); each statistic picks its coders, e.g.
    ``Alpha(rows=[0, 1, 2])`` vs ``Alpha(rows=[0, 1, 3])``. ``share_le_zero`` is the share of defined
    replicate differences <= 0: small values say a's advantage is not a resampling accident.
    """
    arr = _as_codes(codes)
    idx = _draws(arr.shape[1], n, seed)
    diff = _replicates(arr, stat_a, idx) - _replicates(arr, stat_b, idx)
    ok = diff[np.isfinite(diff)]
    share = float((ok <= 0).mean()) if ok.size else np.nan
    return PairedDifference(float(stat_a(arr) - stat_b(arr)), *_interval(diff, ci), share, diff)
