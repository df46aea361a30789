"""Estimates with intervals, as every figure of the tool carries them: one copy of each rule.

- ``estimate(point, replicates)``: the percentile bootstrap interval, with the share of replicates in which
  the statistic was undefined (e.g. kappa on a resample where one coder used one label). Dropping those
  replicates silently biases the interval (2 units of perfect agreement gave 1.000 [1.000, 1.000] with 48% of
  replicates dropped), so the share is reported and above ``MAX_UNDEFINED`` (5%) the interval is flagged
  ``unreliable``.
- ``wilson(k, n)``: the Wilson score interval for a proportion (accuracy, coverage). The percentile bootstrap
  of a proportion gives [1, 1] for 20/20 and covers p = 0.95 at n = 50 only about 90% of the time; Wilson's
  interval keeps close to its nominal 95% down to small n (Brown, Cai & DasGupta 2001).
- ``too_few(n, minimum)``: the figure a comparison on fewer than ``minimum`` units is shown as.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from annotator.stats import MIN_UNITS

Array = NDArray[np.float64]
CI = 0.95
MAX_UNDEFINED = 0.05  # above this share of undefined replicates, an interval is flagged unreliable


def json_number(x: float | None) -> float | None:
    """JSON-ready: NaN becomes None (PostgreSQL's JSON and strict parsers refuse NaN)."""
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def percentile_interval(reps: Array, ci: float = CI) -> tuple[float, float]:
    """The ``ci`` percentile interval of the finite bootstrap replicates; (NaN, NaN) when there are none."""
    ok = reps[np.isfinite(reps)]
    if ok.size == 0:
        return math.nan, math.nan
    lo, hi = np.percentile(ok, [100 * (1 - ci) / 2, 100 * (1 + ci) / 2])
    return float(lo), float(hi)


def estimate(point: float, reps: Array) -> dict[str, Any]:
    """A point estimate with its percentile interval, the share of undefined replicates and the flag.

    ``{"estimate", "low", "high"}`` (None where undefined), plus ``undefined_share`` and ``unreliable``
    whenever replicates were drawn."""
    if point is None or not math.isfinite(point):
        return {"estimate": None, "low": None, "high": None}
    reps = np.asarray(reps, dtype=float)
    lo, hi = percentile_interval(reps)
    out: dict[str, Any] = {"estimate": json_number(point), "low": json_number(lo), "high": json_number(hi)}
    if reps.size:
        share = float((~np.isfinite(reps)).mean())
        out["undefined_share"] = json_number(share)
        out["unreliable"] = share > MAX_UNDEFINED
    return out


def wilson(k: int, n: int, ci: float = CI) -> dict[str, Any]:
    """The proportion k/n with its Wilson score interval (``method``: wilson); None figures when n = 0."""
    if n <= 0:
        return {"estimate": None, "low": None, "high": None, "method": "wilson"}
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + ci / 2))
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return {
        "estimate": json_number(p),
        "low": json_number(max(0.0, centre - half)),
        "high": json_number(min(1.0, centre + half)),
        "method": "wilson",
    }


def too_few(n: int, minimum: int = MIN_UNITS) -> str:
    """The words a figure on fewer than ``minimum`` units is shown as."""
    return f"too few units ({n}; at least {minimum} needed)"
