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

This module holds Cohen's and Fleiss' kappa, Gwet's AC1, percent agreement and the majority code, and
re-exports the rest: the matrix from `annotator.stats.matrix`, alpha from `annotator.stats.alpha`, the
bootstrap from `annotator.stats.bootstrap`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import cohen_kappa_score

from annotator.stats.alpha import LEVELS, AlphaReport, Level, alpha_report, krippendorff_alpha
from annotator.stats.bootstrap import (
    Alpha,
    BootstrapResult,
    PairedDifference,
    Statistic,
    bootstrap,
    paired_bootstrap_difference,
)
from annotator.stats.matrix import Array, _as_codes, _unit_counts, category_order, to_matrix

__all__ = [
    "LEVELS",
    "Alpha",
    "AlphaReport",
    "Array",
    "BootstrapResult",
    "Level",
    "PairedDifference",
    "Statistic",
    "alpha_report",
    "bootstrap",
    "category_order",
    "cohen_kappa",
    "fleiss_kappa",
    "gwet_ac1",
    "krippendorff_alpha",
    "majority",
    "paired_bootstrap_difference",
    "percent_agreement",
    "to_matrix",
]


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
