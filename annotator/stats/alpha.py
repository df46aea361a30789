"""Krippendorff's alpha: the coincidence matrix, the difference function of each level of measurement
(nominal, ordinal, interval, ratio), `alpha_report` (alpha with its pairable units and values, and why it is
NaN when it is) and `krippendorff_alpha`. The batched core (`_alpha_from_coincidence`) also serves the
bootstrap's fast path (`annotator.stats.bootstrap.Alpha`). Pure numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from annotator.stats.matrix import Array, _as_codes, _unit_counts

Level = Literal["nominal", "ordinal", "interval", "ratio"]
LEVELS: tuple[str, ...] = ("nominal", "ordinal", "interval", "ratio")


class AlphaReport(NamedTuple):
    """Alpha with what it rests on, and why it is NaN when it is."""

    alpha: float
    pairable_units: int
    pairable_values: int
    reason: str | None


def _coincidences(counts: Array) -> Array:
    """Per-unit contributions to the coincidence matrix, units x k x k (zero for units with < 2 codes).

    o_ck = sum_u (n_uc n_uk - [c == k] n_uc) / (m_u - 1), Krippendorff (2011) eq. for missing data.
    """
    m = counts.sum(axis=1)
    scale = np.where(m >= 2, 1.0 / np.maximum(m - 1.0, 1.0), 0.0)
    contrib = counts[:, :, None] * counts[:, None, :]
    k = counts.shape[1]
    contrib[:, np.arange(k), np.arange(k)] -= counts
    return contrib * scale[:, None, None]


def _deltas(level: str, values: Array, n_c: Array) -> Array:
    """Squared difference function delta^2_ck; for ordinal it depends on the marginals (batched: ... x k)."""
    if level == "nominal":
        k = values.size
        return np.broadcast_to(1.0 - np.eye(k), (*n_c.shape[:-1], k, k))
    if level == "interval":
        d = (values[:, None] - values[None, :]) ** 2
        return np.broadcast_to(d, (*n_c.shape[:-1], *d.shape))
    if level == "ratio":
        s = values[:, None] + values[None, :]
        diff = values[:, None] - values[None, :]
        d = np.divide(diff, s, out=np.zeros_like(diff), where=s != 0) ** 2
        return np.broadcast_to(d, (*n_c.shape[:-1], *d.shape))
    # ordinal: (sum of n_g for g between c and k, inclusive, minus (n_c + n_k) / 2) ^ 2, ranks by value
    order = np.argsort(values, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    n_sorted = n_c[..., order]
    cum = np.cumsum(n_sorted, axis=-1)
    lo = np.minimum(rank[:, None], rank[None, :])
    hi = np.maximum(rank[:, None], rank[None, :])
    between = cum[..., hi] - cum[..., lo] + n_sorted[..., lo]
    return (between - (n_c[..., :, None] + n_c[..., None, :]) / 2.0) ** 2


def _alpha_from_coincidence(o: Array, level: str, values: Array) -> Array:
    """Alpha from (batched) coincidence matrices ... x k x k; NaN where undefined."""
    n_c = o.sum(axis=-1)
    n = n_c.sum(axis=-1)
    delta = _deltas(level, values, n_c)
    observed = (o * delta).sum(axis=(-2, -1))
    expected = (n_c[..., :, None] * n_c[..., None, :] * delta).sum(axis=(-2, -1)) / np.maximum(n - 1.0, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = 1.0 - observed / expected
    return np.where((expected > 0) & (n >= 2), alpha, np.nan)


def _check_level(level: str, values: Sequence[float] | None, k: int) -> Array:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    vals = np.arange(k, dtype=float) if values is None else np.asarray(values, dtype=float)
    if vals.ndim != 1 or vals.size < k:
        raise ValueError(f"values must give a number for each of the {k} category indices")
    return vals


def alpha_report(
    codes: ArrayLike, level: Level = "nominal", values: Sequence[float] | None = None
) -> AlphaReport:
    """Krippendorff's alpha with its pairable units and values, and the reason when it is NaN."""
    arr = _as_codes(codes)
    counts = _unit_counts(arr, None if values is None else len(values))
    vals = _check_level(level, values, counts.shape[1])
    m = counts.sum(axis=1)
    pairable = m >= 2
    n_units, n_values = int(pairable.sum()), int(m[pairable].sum())
    if arr.shape[0] < 2:
        return AlphaReport(np.nan, 0, 0, "only one coder: agreement needs at least two")
    if n_units == 0:
        return AlphaReport(np.nan, 0, 0, "no unit was coded by two or more coders (nothing is pairable)")
    c = counts[pairable]
    w = c / (m[pairable] - 1.0)[:, None]
    o = w.T @ c - np.diag(w.sum(axis=0))
    alpha = float(_alpha_from_coincidence(o, level, vals))
    reason = None
    if np.isnan(alpha):
        reason = "every pairable value is the same (no variation): alpha = 0/0 is undefined"
    return AlphaReport(alpha, n_units, n_values, reason)


def krippendorff_alpha(
    codes: ArrayLike, level: Level = "nominal", values: Sequence[float] | None = None
) -> float:
    """Krippendorff's alpha on the coincidence matrix; units with fewer than two codes drop out.

    ``values`` gives the number of each category index for ordinal/interval/ratio (default: the index, so
    pass values for ratio data, where 0 is a true zero; ordinal uses only their order). NaN, with the reason in `alpha_report`, when there is one coder, no
    pairable unit, or no variation among the pairable values (alpha is 0/0 there: data without variation
    cannot show that coders distinguish anything).
    """
    return alpha_report(codes, level, values).alpha
