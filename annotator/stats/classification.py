"""Figures of one coder's labels against gold labels on one set of items: accuracy, per-class precision,
recall, F1 and support, macro and weighted F1, Cohen's kappa, the confusion matrix and coverage (pure; used by
`annotator.services.validation` and `annotator compare`).

Accuracy and coverage are proportions with Wilson score intervals; macro F1 and kappa have seeded
unit-bootstrap intervals (items resampled with replacement, every statistic on the same draws).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import cohen_kappa_score, confusion_matrix, precision_recall_fscore_support

from annotator.stats.intervals import estimate, json_number, wilson

__all__ = ["INVALID", "MIN_SUPPORT", "confusion_stats", "validation_figures"]

Array = NDArray[np.float64]
INVALID = "(invalid/missing)"  # the answer of an asked item without a valid answer
MIN_SUPPORT = 30  # a class with fewer gold items gets a warning


def confusion_stats(conf: Array, label_idx: list[int]) -> tuple[Array, Array, Array]:
    """Accuracy, macro F1 (over ``label_idx``) and kappa of batched confusion matrices (... x K x K)."""
    n = conf.sum(axis=(-2, -1))
    diag = np.diagonal(conf, axis1=-2, axis2=-1)
    rows = conf.sum(axis=-1)
    cols = conf.sum(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = diag.sum(axis=-1) / n
        tp = diag[..., label_idx]
        denom = rows[..., label_idx] + cols[..., label_idx]
        f1 = np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 0.0)
        macro = f1.mean(axis=-1) if label_idx else np.full(n.shape, np.nan)
        pe = (rows * cols).sum(axis=-1) / n**2
        kappa = np.where(pe < 1, (acc - pe) / (1 - pe), np.nan)
    return acc, macro, kappa


def validation_figures(
    y_true: list[str],
    y_pred: list[str],
    labels: list[str],
    uncertain: str | None,
    n_missing: int,
    n_boot: int,
    seed: int,
) -> dict[str, Any]:
    """Every figure of one run on one set of gold items; ``y_pred`` holds INVALID for invalid/missing answers.

    The items are the ones the run was asked (the caller restricts them): ``n_missing`` of the INVALID
    answers are asked items never answered, the rest invalid or error answers. Accuracy and coverage carry
    Wilson intervals (``coverage`` itself stays a plain number; its interval is ``coverage_interval``); macro
    F1 and kappa carry seeded percentile-bootstrap intervals (``intervals.estimate``).
    """
    n = len(y_true)
    gold_used = set(y_true)
    classes = labels + ([uncertain] if uncertain is not None and uncertain in gold_used else [])
    answer_cols = labels + ([uncertain] if uncertain is not None else [])
    all_cols = [*answer_cols, INVALID]
    n_invalid_or_missing = sum(p == INVALID for p in y_pred)
    n_uncertain = sum(p == uncertain for p in y_pred) if uncertain is not None else 0
    correct = sum(t == p for t, p in zip(y_true, y_pred, strict=True))
    support_classes = [c for c in classes if c in gold_used]
    warnings = [
        f"class {c!r} has {y_true.count(c)} gold items (fewer than {MIN_SUPPORT}): its figures are unstable"
        for c in classes
        if y_true.count(c) < MIN_SUPPORT
    ]
    out: dict[str, Any] = {
        "n_gold": n,
        "n_correct": correct,
        "n_valid": n - n_invalid_or_missing,
        "n_invalid": n_invalid_or_missing - n_missing,
        "n_missing": n_missing,
        "n_uncertain": n_uncertain,
        "coverage": json_number(1 - n_invalid_or_missing / n) if n else None,
        "coverage_interval": wilson(n - n_invalid_or_missing, n),
        "warnings": warnings,
    }
    if n == 0:
        return out | {"accuracy": wilson(0, 0), "per_class": [], "confusion": None}
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=classes, zero_division=np.nan)
    out["per_class"] = [
        {
            "label": c,
            "precision": json_number(float(p[i])),
            "recall": json_number(float(r[i])),
            "f1": json_number(float(f[i])),
            "support": int(s[i]),
        }
        for i, c in enumerate(classes)
    ]
    if support_classes:
        _, _, mf, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=support_classes, average="macro", zero_division=0.0
        )
        _, _, wf, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=support_classes, average="weighted", zero_division=0.0
        )
        macro, weighted = float(mf), float(wf)
    else:
        macro = weighted = math.nan
    kappa = float(cohen_kappa_score(y_true, y_pred)) if len(set(y_true) | set(y_pred)) > 1 else math.nan
    cm = confusion_matrix(y_true, y_pred, labels=all_cols)
    row_labels = [c for c in answer_cols if c in classes]
    out["confusion"] = {
        "rows": row_labels,  # gold
        "columns": all_cols,  # the run's answers
        "matrix": [[int(v) for v in cm[all_cols.index(rl)]] for rl in row_labels],
    }

    # bootstrap: documents resampled, every statistic on the same draws
    index = {c: i for i, c in enumerate(all_cols)}
    k = len(all_cols)
    t = np.array([index[v] for v in y_true])
    q = np.array([index[v] for v in y_pred])
    draws = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    weights = np.zeros((n_boot, n))
    np.add.at(weights, (np.repeat(np.arange(n_boot), n), draws.ravel()), 1.0)
    onehot = np.zeros((n, k * k))
    onehot[np.arange(n), t * k + q] = 1.0
    conf = (weights @ onehot).reshape(n_boot, k, k)
    _, macro_r, kappa_r = confusion_stats(conf, [index[c] for c in support_classes])
    out["accuracy"] = wilson(correct, n)
    out["macro_f1"] = estimate(macro, macro_r)
    out["weighted_f1"] = json_number(weighted)
    out["kappa"] = estimate(kappa, kappa_r)
    return out
