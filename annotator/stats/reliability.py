"""Inter-coder reliability: Krippendorff's alpha, Cohen's and Fleiss' kappa, Gwet's AC1, percent agreement,
and bootstrap intervals. Pure numpy; no database, no CLI.

Every coefficient reads a reliability matrix ``codes``: coders x units, category indices 0..k-1 as floats,
NaN where a coder did not code a unit (`to_matrix` builds one from (coder, unit, label) records and keeps
the label names).

Why the bootstrap resamples units. The unit (a text) is the sampling unit of a content analysis: the
reliability question is how coders would agree on other texts drawn like these. Krippendorff's own bootstrap
(Hayes & Krippendorff 2007) resamples pairable values from the coincidence matrix, which treats the values of
one unit as independent; resampling whole units with replacement keeps each unit's codes together (so
within-unit dependence is carried into the interval), needs no coefficient-specific theory, and applies
unchanged to kappas, AC1 and to paired differences between two coders' agreement on the same units.
Intervals are percentile intervals from a seeded ``numpy.random.Generator``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.metrics import cohen_kappa_score

from annotator.errors import InputError

Level = Literal["nominal", "ordinal", "interval", "ratio"]
LEVELS: tuple[str, ...] = ("nominal", "ordinal", "interval", "ratio")
Array = NDArray[np.float64]


# -- input ----------------------------------------------------------------------------------------------


def to_matrix(
    records: Iterable[tuple[Hashable, Hashable, str | None]],
    coders: Sequence[Hashable] | None = None,
    units: Sequence[Hashable] | None = None,
    categories: Sequence[str] | None = None,
) -> tuple[Array, list[Hashable], list[Hashable], list[str]]:
    """(coder, unit, label) records -> (matrix, coders, units, categories).

    Coders and units default to their order of first appearance; given lists select and order them (records
    of other coders or units are left out). Categories default to the labels seen in `category_order`
    (numeric-looking labels by value: '1', '2', '9', '10'; then the others alphabetically); pass
    ``categories`` for an ordinal scale whose order is not that. A label outside given categories is an
    error, never a new category. A label of None is missing: pass None for invalid or
    "uncertain" answers to leave them out, or list "uncertain" in ``categories`` to count it as a category.
    """
    rows = [(c, u, lab) for c, u, lab in records]
    coder_list = list(dict.fromkeys(c for c, _, _ in rows)) if coders is None else list(coders)
    unit_list = list(dict.fromkeys(u for _, u, _ in rows)) if units is None else list(units)
    if categories is None:
        categories = category_order(lab for _, _, lab in rows if lab is not None)
    cat_list = list(categories)
    ci = {c: i for i, c in enumerate(coder_list)}
    ui = {u: i for i, u in enumerate(unit_list)}
    ki = {k: i for i, k in enumerate(cat_list)}
    matrix = np.full((len(coder_list), len(unit_list)), np.nan)
    seen: set[tuple[int, int]] = set()
    for coder, unit, label in rows:
        if coder not in ci or unit not in ui or label is None:
            continue
        if label not in ki:
            raise InputError(f"label {label!r} (coder {coder!r}, unit {unit!r}) is not one of {cat_list}")
        key = (ci[coder], ui[unit])
        if key in seen:
            raise InputError(f"coder {coder!r} coded unit {unit!r} more than once; keep one code per pair")
        seen.add(key)
        matrix[key] = ki[label]
    return matrix, coder_list, unit_list, cat_list


def _number(label: str) -> float | None:
    try:
        x = float(label)
    except (TypeError, ValueError):
        return None
    return x if np.isfinite(x) else None


def category_order(labels: Iterable[str]) -> list[str]:
    """The distinct labels, numeric-looking ones first in numeric order ('1', '2', '9', '10', not the string
    order '1', '10', '2', '9', which would scramble an ordinal scale), then the others alphabetically."""
    distinct = set(labels)
    numbers = sorted((x, lab) for lab in distinct if (x := _number(lab)) is not None)
    return [lab for _, lab in numbers] + sorted(lab for lab in distinct if _number(lab) is None)


def _as_codes(codes: ArrayLike) -> Array:
    """A float coders x units matrix whose finite entries are category indices (checked: bugs fail loudly)."""
    arr = np.asarray(codes, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"codes must be 2-D (coders x units), got shape {arr.shape}")
    finite = arr[np.isfinite(arr)]
    if finite.size and (finite.min() < 0 or np.any(finite != np.floor(finite))):
        raise ValueError("codes must be category indices 0..k-1 (NaN for missing); map labels with to_matrix")
    return arr


def _unit_counts(codes: Array, k: int | None = None) -> Array:
    """units x k matrix: how many coders put each unit in each category."""
    mask = np.isfinite(codes)
    unit_idx = np.nonzero(mask)[1]
    vals = codes[mask].astype(np.int64)
    if k is None:
        k = int(vals.max()) + 1 if vals.size else 1
    elif vals.size and vals.max() >= k:
        raise ValueError(f"code {int(vals.max())} is outside 0..{k - 1}")
    n_units = codes.shape[1]
    return np.bincount(unit_idx * k + vals, minlength=n_units * k).reshape(n_units, k).astype(float)


# -- Krippendorff's alpha ---------------------------------------------------------------------------------


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


# -- kappas, AC1, percent agreement -------------------------------------------------------------------------


def cohen_kappa(
    a: ArrayLike,
    b: ArrayLike,
    weights: Literal["linear", "quadratic"] | None = None,
    n_categories: int | None = None,
) -> float:
    """Cohen's kappa of two coders on the units both coded (scikit-learn's estimator).

    Weights use the distance between category indices 0..k-1 (all k of them, so an unused middle category
    still counts in the distance); NaN when no unit was coded by both or both used one same category only.
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    _as_codes(np.vstack([x, y]))
    both = np.isfinite(x) & np.isfinite(y)
    x, y = x[both].astype(np.int64), y[both].astype(np.int64)
    if x.size == 0 or np.unique(np.concatenate([x, y])).size < 2:
        return np.nan
    k = n_categories or int(max(x.max(), y.max())) + 1
    return float(cohen_kappa_score(x, y, labels=np.arange(k), weights=weights))


def fleiss_kappa(codes: ArrayLike) -> float:
    """Fleiss' (1971) kappa on the units coded by every coder (his formula assumes equal raters per unit).

    Units with a missing code are left out; use alpha or AC1 to keep them. NaN if none is left or there is
    no variation.
    """
    arr = _as_codes(codes)
    if arr.shape[0] < 2:
        return np.nan
    counts = _unit_counts(arr[:, np.isfinite(arr).all(axis=0)])
    if counts.shape[0] == 0:
        return np.nan
    r = arr.shape[0]
    p_unit = ((counts**2).sum(axis=1) - r) / (r * (r - 1.0))
    p_cat = counts.sum(axis=0) / counts.sum()
    p_e = float((p_cat**2).sum())
    return np.nan if p_e >= 1.0 else float((p_unit.mean() - p_e) / (1.0 - p_e))


def gwet_ac1(codes: ArrayLike, n_categories: int | None = None) -> float:
    """Gwet's AC1 for any number of raters with missing codes (Gwet 2014, Handbook, ch. on missing data).

    Agreement p_a averages over units rated by at least two raters; the category shares pi_k average
    r_ik / r_i over every unit rated at least once; p_e = sum pi_k (1 - pi_k) / (q - 1). q defaults to the
    number of categories observed (as Gwet's irrCAC does); pass the codebook's count to use all of them.
    """
    arr = _as_codes(codes)
    counts = _unit_counts(arr, n_categories)
    r = counts.sum(axis=1)
    q = n_categories or int((counts.sum(axis=0) > 0).sum())
    two = r >= 2
    if arr.shape[0] < 2 or not two.any() or q < 2:
        return np.nan
    c2, r2 = counts[two], r[two]
    p_a = float(((c2 * (c2 - 1)).sum(axis=1) / (r2 * (r2 - 1))).mean())
    pi = (counts[r >= 1] / r[r >= 1, None]).mean(axis=0)
    p_e = float((pi * (1 - pi)).sum() / (q - 1))
    return float((p_a - p_e) / (1 - p_e))


def percent_agreement(codes: ArrayLike) -> float:
    """Share of agreeing coder pairs within a unit, averaged over units coded by two or more coders.

    With two coders this is the share of jointly coded units on which they agree. NaN if nothing is pairable.
    """
    counts = _unit_counts(_as_codes(codes))
    m = counts.sum(axis=1)
    two = m >= 2
    if not two.any():
        return np.nan
    c, mm = counts[two], m[two]
    return float(((c * (c - 1)).sum(axis=1) / (mm * (mm - 1))).mean())


def majority(codes: ArrayLike, n_categories: int | None = None) -> tuple[Array, int]:
    """The plurality category of each unit (columns) over the coders (rows), NaN where nobody coded the unit
    or where the top categories tie; and how many coded units were tied (left out, and reported)."""
    arr = _as_codes(codes)
    if arr.shape[0] == 0:
        return np.full(arr.shape[1], np.nan), 0
    counts = _unit_counts(arr, n_categories)
    top = counts.max(axis=1)
    tied = (counts == top[:, None]).sum(axis=1) > 1
    coded = top > 0
    labels = np.where(coded & ~tied, counts.argmax(axis=1).astype(float), np.nan)
    return labels, int((coded & tied).sum())


# -- bootstrap --------------------------------------------------------------------------------------------


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
