"""The reliability matrix every coefficient reads: ``codes``, coders x units, category indices 0..k-1 as
floats, NaN where a coder did not code a unit. `to_matrix` builds one from (coder, unit, label) records and
keeps the label names; `category_order` orders the labels; the private helpers check a matrix and count each
unit's codes per category. Pure numpy.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from annotator.stats.errors import DataError

Array = NDArray[np.float64]


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
            raise DataError(f"label {label!r} (coder {coder!r}, unit {unit!r}) is not one of {cat_list}")
        key = (ci[coder], ui[unit])
        if key in seen:
            raise DataError(f"coder {coder!r} coded unit {unit!r} more than once; keep one code per pair")
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
