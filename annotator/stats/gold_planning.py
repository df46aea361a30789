"""How many documents humans must code: gold items for a PPI interval on a share, and double-coded units
for a Krippendorff's alpha interval, each of a chosen total width, planned from a pilot.

`gold_needed_for_width` solves the PPI++ variance of `annotator.stats.ppi.ppi_share` for n. With the
pilot's gold codes y and LLM labels yhat (variances s_y^2, s_h^2, covariance c, divisor n as ppi_py) and
N labelled documents::

    V(n, lam) = (s_y^2 - 2 lam c + lam^2 s_h^2) / n + lam^2 s_h^2 / N,
    lam(n)    = c / ((1 + n/N) s_h^2) clipped to [0, 1]        (the power tuning of PPI++)

and returns the smallest n with 2 z sqrt(V(n, lam(n))) <= width (V falls as n grows: bisection), beside
the gold-only n = ceil(4 z^2 p (1 - p) / width^2), p the pilot's share (Angelopoulos, Duchi & Zrnic 2024,
PPI++, arXiv:2311.01453). It assumes the pilot was a random sample of the corpus, that its variances and
the LLM's agreement with the gold codes hold for the full sample (a pilot of 50-100 items estimates them
roughly: plan with a margin), that lam is tuned, and the normal (CLT) interval.

`units_for_alpha_width` simulates: a study of m units is drawn by resampling m of the pilot's units with
replacement (seeded), alpha is computed on each draw (`annotator.stats.bootstrap.Alpha`'s fast path), and
the width of the draws' central interval is the width a unit bootstrap would give a study of m units. It
starts from the pilot's own bootstrap width scaled by 1/sqrt(m) and refines m with simulated widths. It
assumes the new units are like the pilot's (the same coders, codebook and kind of texts: the pilot's units
are a random sample of the pool) and the percentile unit bootstrap that annotator's reliability figures use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from annotator.stats.alpha import Level, alpha_report
from annotator.stats.bootstrap import Alpha
from annotator.stats.errors import DataError
from annotator.stats.intervals import percentile_interval
from annotator.stats.matrix import _as_codes
from annotator.stats.ppi import _vector, _z

PPI_ASSUMPTIONS = (
    "the pilot is a random sample of the corpus and its variances (and the LLM's agreement with the gold "
    "codes) hold for the full gold sample; lam is tuned (PPI++); normal (CLT) interval"
)
ALPHA_ASSUMPTIONS = (
    "new units are like the pilot's (same coders, codebook and kind of texts); the interval is the "
    "percentile unit bootstrap; widths simulated by resampling the pilot's units"
)


@dataclass(frozen=True)
class GoldPlan:
    """Gold items to code for a PPI interval of total width ``target_width`` on a share."""

    n_gold: int  # with PPI++ (the LLM's labels on n_unlabeled documents)
    n_gold_only: int  # without the LLM: 4 z^2 p (1 - p) / width^2
    target_width: float
    alpha: float
    lam: float  # the tuned lam at n_gold
    pilot_n: int
    pilot_share: float
    n_unlabeled: int
    assumptions: str = PPI_ASSUMPTIONS

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AlphaPlan:
    """Units all coders must code for a Krippendorff's alpha interval of total width ``target_width``."""

    units: int
    simulated_width: float  # the simulated interval width at ``units``
    target_width: float
    ci: float
    pilot_units: int  # pairable units in the pilot
    pilot_alpha: float
    pilot_width: float  # the pilot's own bootstrap interval width
    n_boot: int
    seed: int
    assumptions: str = ALPHA_ASSUMPTIONS

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _width_check(target_width: float, upper: float) -> None:
    if not 0 < target_width < upper:
        raise DataError(
            f"target_width must be between 0 and {upper} (the interval's total width); got {target_width}"
        )


def gold_needed_for_width(
    y_gold_pilot: ArrayLike,
    yhat_gold_pilot: ArrayLike,
    n_unlabeled: int,
    target_width: float,
    alpha: float = 0.05,
) -> GoldPlan:
    """The gold n for a PPI++ interval of total width ``target_width`` on a share (module docstring), from a
    pilot's gold codes (0/1) and the LLM's labels on the same items; ``n_unlabeled``: documents the LLM
    labels. ``n_gold`` may exceed ``n_unlabeled`` (the corpus is then too small for that width)."""
    y = _vector(y_gold_pilot, "y_gold_pilot (pilot gold codes)", "binary")
    yhat = _vector(yhat_gold_pilot, "yhat_gold_pilot (LLM labels on the pilot)", "unit", y)
    if n_unlabeled < 2:
        raise DataError(f"n_unlabeled (documents the LLM labels) must be at least 2; got {n_unlabeled}")
    _width_check(target_width, 1.0)
    z, p = _z(alpha), float(y.mean())
    s_y, s_h = float(y.var()), float(yhat.var())
    c = float(np.mean((y - y.mean()) * (yhat - yhat.mean())))
    v_max = (target_width / (2 * z)) ** 2
    big_n = float(n_unlabeled)

    def lam_at(n: int) -> float:
        return float(np.clip(c / ((1 + n / big_n) * s_h), 0, 1)) if s_h > 0 else 0.0

    def variance(n: int) -> float:
        lam = lam_at(n)
        return (s_y - 2 * lam * c + lam**2 * s_h) / n + lam**2 * s_h / big_n

    n_only = max(2, math.ceil(4 * z**2 * p * (1 - p) / target_width**2))
    lo, hi = 1, n_only  # variance(n_only) <= v_max: lam = 0 is always allowed, tuned lam does no worse
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if variance(mid) <= v_max else (mid, hi)
    n = max(2, hi)
    return GoldPlan(n, n_only, target_width, alpha, lam_at(n), y.size, p, n_unlabeled)


def _simulated_width(stat: Alpha, codes: np.ndarray, m: int, n_boot: int, ci: float, seed: int) -> float:
    """The central ``ci`` interval width of alpha over n_boot studies of m units drawn from the pilot's."""
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(m, np.full(codes.shape[1], 1.0 / codes.shape[1]), size=n_boot).astype(float)
    lo, hi = percentile_interval(stat.replicates(codes, weights), ci)
    return hi - lo


def units_for_alpha_width(
    pilot_codes: ArrayLike,
    target_width: float,
    level: Level = "nominal",
    values: Sequence[float] | None = None,
    ci: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
    max_units: int = 1_000_000,
) -> AlphaPlan:
    """Units that every coder must code for a Krippendorff's alpha interval of total width ``target_width``.

    ``pilot_codes``: the pilot's reliability matrix (coders x units, category indices, NaN where a coder
    did not code a unit; `annotator.stats.matrix.to_matrix` builds it), 2-3 coders usually. ``level`` and
    ``values`` as in `krippendorff_alpha`. Simulated as the module docstring says, seeded; the width at
    the answer is returned beside it (simulation noise: about +-5% in units at n_boot 2000).
    """
    codes = _as_codes(pilot_codes)
    _width_check(target_width, 2.0)
    report = alpha_report(codes, level, values)
    if report.reason is not None:
        raise DataError(f"the pilot's alpha cannot be computed: {report.reason}")
    pairable = np.isfinite(codes).sum(axis=0) >= 2
    codes = codes[:, pairable]
    n_p = codes.shape[1]
    if n_p < 10:
        raise DataError(f"the pilot has {n_p} units coded by two or more coders; plan from at least 10")
    stat = Alpha(level, values)
    pilot_width = _simulated_width(stat, codes, n_p, n_boot, ci, seed)
    if not pilot_width > 0:
        raise DataError(
            f"alpha does not vary across resamples of the pilot's {n_p} units (the coders agree on every "
            "one, or nothing varies), so no number of units follows from it; code a larger pilot"
        )
    m, width = n_p, pilot_width
    for step in range(4):  # width ~ 1/sqrt(m): rescale, then check by simulation at the new m
        m = min(max(2, math.ceil(m * (width / target_width) ** 2)), max_units)
        width = _simulated_width(stat, codes, m, n_boot, ci, seed + step + 1)
        if abs(width - target_width) <= 0.02 * target_width or m == max_units:
            break
    if width > target_width * 1.05:
        raise DataError(f"even {m} units give an alpha interval {width:.3f} wide; the target cannot be met")
    return AlphaPlan(m, width, target_width, ci, n_p, report.alpha, pilot_width, n_boot, seed)
