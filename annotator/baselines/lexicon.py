"""A sentiment lexicon: VADER (Hutto & Gilbert 2014), rule-based, no training.

VADER's compound score lies in [-1, 1]. Its authors' thresholds: compound >= 0.05 is positive, <= -0.05 is
negative, anything between is neutral. The runner maps these three to the codebook's labels by name
(``positive``, ``negative``, and ``neutral`` or the codebook's uncertain label); where the codebook has no
label for a verdict, the text is stored invalid with the score as its raw output, never as a guessed label.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from annotator.baselines.base import Baseline, Prediction, check_texts

THRESHOLD = 0.05
VERDICTS = ("negative", "neutral", "positive")


class VaderLexicon(Baseline):
    """``labels`` maps VADER's verdicts (negative, neutral, positive) to codebook labels (None: no label)."""

    def __init__(self, labels: dict[str, str | None] | None = None, threshold: float = THRESHOLD):
        self.labels = labels
        self.threshold = threshold

    def fit(self, X: Sequence[str] | None = None, y: Sequence[str] | None = None) -> VaderLexicon:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self.analyzer_: Any = SentimentIntensityAnalyzer()
        mapping = self.labels if self.labels is not None else {v: v for v in VERDICTS}
        self.mapping_ = {v: mapping.get(v) for v in VERDICTS}
        self.classes_ = np.array([c for c in self.mapping_.values() if c is not None], dtype=object)
        return self

    def compound(self, X: Sequence[str]) -> np.ndarray:
        return np.array([self.analyzer_.polarity_scores(t)["compound"] for t in check_texts(X)])

    def verdict(self, score: float) -> str:
        if score >= self.threshold:
            return "positive"
        if score <= -self.threshold:
            return "negative"
        return "neutral"

    def predict_rows(self, X: Sequence[str]) -> list[Prediction]:
        rows = []
        for score in self.compound(X).tolist():
            verdict = self.verdict(score)
            label = self.mapping_[verdict]
            raw = f"compound={score:.4f} ({verdict})"
            rows.append(
                Prediction(label, None, "ok", raw) if label else Prediction(None, None, "invalid", raw)
            )
        return rows
