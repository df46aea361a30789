"""Significance tests for paired comparisons of coders: McNemar's exact test and Holm's adjustment.

Pure functions on counts and p values (scipy for the binomial tail); `annotator.services.compare` uses them.
"""

from __future__ import annotations

from collections.abc import Sequence


def p_json(x: float) -> float:
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
