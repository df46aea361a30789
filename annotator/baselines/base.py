"""What every baseline shares: scikit-learn estimator conventions, and one prediction row per text.

A baseline is a scikit-learn classifier on raw texts (``fit(texts, labels)``, ``predict(texts)``,
``predict_proba`` where it has probabilities), so it composes with pipelines and cross-validation. The runner
stores what ``predict_rows`` returns: a label from the codebook, or no label and the status ``invalid`` with
the raw output (text-to-text models can answer anything; a label is never invented).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


@dataclass(frozen=True)
class Prediction:
    label: str | None
    probability: float | None = None
    status: str = "ok"  # ok or invalid
    raw: str | None = None


class Baseline(ClassifierMixin, BaseEstimator):
    """Base class: subclasses implement fit and predict_proba (or predict_rows)."""

    classes_: np.ndarray

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def predict(self, X: Sequence[str]) -> np.ndarray:
        return np.array([row.label for row in self.predict_rows(X)], dtype=object)

    def predict_rows(self, X: Sequence[str]) -> list[Prediction]:
        proba = self.predict_proba(X)
        best = proba.argmax(axis=1)
        return [Prediction(str(self.classes_[k]), float(proba[i, k])) for i, k in enumerate(best.tolist())]

    def describe(self) -> dict[str, Any]:
        """The settings stored with the run (scikit-learn's parameters, JSON-safe)."""
        out: dict[str, Any] = {}
        for key, value in self.get_params(deep=False).items():
            if key == "progress":
                continue
            if isinstance(value, str | int | float | bool) or value is None:
                out[key] = value
            elif isinstance(value, list | tuple):
                out[key] = [
                    v if isinstance(v, str | int | float | bool) else getattr(v, "name", str(v))
                    for v in value
                ]
            elif isinstance(value, dict):
                out[key] = {str(k): v for k, v in value.items()}
            else:
                out[key] = getattr(value, "name", type(value).__name__)
        return out


def check_texts(X: Sequence[str]) -> list[str]:
    texts = list(X)
    if any(not isinstance(t, str) for t in texts):
        raise TypeError("baselines take a sequence of texts (str)")
    return texts


def softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=1, keepdims=True))
