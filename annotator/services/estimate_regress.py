"""`annotator estimate --regress "label=against ~ year + party"`: a regression of a label's indicator on
document metadata, with prediction-powered intervals for its coefficients (PPI++ logistic, or linear with
``--linear``), beside the gold-only fit. A numeric column enters as it is; any other as indicators of its
values against the most frequent one. Documents without a value of every covariate are left out (counted)."""

from __future__ import annotations

import math
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np

from annotator.errors import InputError, arg
from annotator.stats.errors import DataError

if TYPE_CHECKING:
    from annotator.services.estimate import Design
    from annotator.store.estimation import EstimationData


def parse_formula(formula: str, labels: list[str]) -> tuple[str, list[str]]:
    """``"label=against ~ year + party"`` (or ``"against ~ year + party"``) -> ("against", ["year", "party"])."""
    left, tilde, right = formula.partition("~")
    outcome = left.strip().removeprefix("label").strip().lstrip("=").strip()
    terms = [t.strip() for t in right.split("+") if t.strip()]
    if not tilde or not outcome or not terms:
        raise InputError(
            f"{arg('regress', formula)}: write LABEL ~ COLUMN + COLUMN, e.g. 'label=positive ~ year + party'"
        )
    if outcome not in labels:
        raise InputError(f"{arg('regress', formula)}: {outcome!r} is not a label ({', '.join(labels)})")
    return outcome, terms


def _value(x: Any) -> Any:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def _coding(data: EstimationData, docs: list[int], terms: list[str]) -> dict[str, list[str] | None]:
    """How each term enters, decided once on every document (so the gold items and the corpus are coded
    alike): None for a numeric column, else its values, the most frequent first (the reference; ties by
    value)."""
    coding: dict[str, list[str] | None] = {}
    for term in terms:
        values = [data.metas[d].get(term) for d in docs]
        try:
            [float(v) for v in values]  # type: ignore[arg-type]
            coding[term] = None
            continue
        except (TypeError, ValueError):
            pass
        counts = Counter(str(v) for v in values)
        levels = sorted(counts, key=lambda lev: (-counts[lev], lev))
        if len(levels) < 2:
            raise InputError(f"{arg('regress', term)}: {term!r} has one value only here ({levels[0]!r})")
        coding[term] = levels
    return coding


def _columns(
    data: EstimationData, docs: list[int], coding: dict[str, list[str] | None]
) -> tuple[np.ndarray, list[str]]:
    """The design matrix (without intercept) of the coded terms for ``docs``, and its column names."""
    blocks: list[np.ndarray] = []
    names: list[str] = []
    for term, levels in coding.items():
        values = [data.metas[d].get(term) for d in docs]
        if levels is None:
            blocks.append(np.array([float(v) for v in values if v is not None])[:, None])  # usable: none None
            names.append(term)
            continue
        for level in levels[1:]:
            blocks.append(np.array([1.0 if str(v) == level else 0.0 for v in values])[:, None])
            names.append(f"{term}={level}")
    return np.hstack(blocks), names


def regression_estimates(
    data: EstimationData, design: Design, formula: str, alpha: float, notes: list[str], linear: bool = False
) -> dict[str, Any]:
    from annotator.stats import ppi

    outcome, terms = parse_formula(formula, data.labels)
    unknown = [t for t in terms if not any(t in data.metas[d] for d in data.population)]
    if unknown:
        raise InputError(f"{arg('regress', formula)}: no document has a column {unknown[0]!r}")
    usable = [d for d in data.population if all(_value(data.metas[d].get(t)) is not None for t in terms)]
    if len(usable) < len(data.population):
        notes.append(f"regression: {len(data.population) - len(usable)} documents lack a covariate, left out")
    inside = set(usable)
    keep = [i for i, d in enumerate(design.gold_ids) if d in inside]
    gold_ids = [design.gold_ids[i] for i in keep]
    weights = None if design.weights is None else [design.weights[i] for i in keep]
    coding = _coding(data, usable, terms)
    x_all, names = _columns(data, usable, coding)
    x_gold, _ = _columns(data, gold_ids, coding)
    y = np.array([1.0 if data.gold_codes[d] == outcome else 0.0 for d in gold_ids])
    yhat = np.array([1.0 if data.answers[d] == outcome else 0.0 for d in gold_ids])
    yhat_all = np.array([1.0 if data.answers[d] == outcome else 0.0 for d in usable])
    fit, classical = (
        (ppi.ppi_ols, ppi.classical_ols) if linear else (ppi.ppi_logistic, ppi.classical_logistic)
    )
    try:
        corrected = fit(x_gold, y, yhat, x_all, yhat_all, alpha, weights=weights, names=names)
        gold_only = classical(x_gold, y, alpha, weights=weights, names=names)
    except DataError as exc:
        raise InputError(f"{arg('regress', formula)}: {exc}") from None
    return {
        "formula": formula,
        "outcome": outcome,
        "model": "linear" if linear else "logistic",
        "n_documents": len(usable),
        "n_gold": len(gold_ids),
        "ppi": [e.to_dict() for e in corrected],
        "gold_only": [e.to_dict() for e in gold_only],
    }
