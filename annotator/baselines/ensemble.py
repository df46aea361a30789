"""A stacked ensemble (Wolpert 1992): logistic regression on sentence embeddings from each encoder, and TF-IDF
logistic regression, combined by a logistic regression on their out-of-fold probabilities.

The members see different things (two encoders' semantics, TF-IDF's exact words), so their errors differ and
the combination beats each of them. Stacking uses scikit-learn's StackingClassifier: the combiner is trained
on probabilities predicted for training documents by members that did not see them (stratified, seeded k-fold
inside the training data), so it never learns from in-sample predictions. Only the train split is used.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.ensemble import StackingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from annotator.baselines.base import Baseline, check_texts
from annotator.baselines.embeddings import Embedder, EmbeddingLogReg
from annotator.baselines.tfidf import TfidfClassifier


class StackedEnsemble(Baseline):
    """``encoders``: names or Embedder objects (default mpnet and MiniLM); ``tfidf`` adds the TF-IDF member."""

    def __init__(
        self,
        encoders: Sequence[str | Embedder] = ("mpnet", "minilm"),
        tfidf: bool = True,
        folds: int = 5,
        seed: int = 0,
    ):
        self.encoders = encoders
        self.tfidf = tfidf
        self.folds = folds
        self.seed = seed

    def members(self) -> list[tuple[str, Baseline]]:
        out: list[tuple[str, Baseline]] = []
        for encoder in self.encoders:
            name = encoder.name if isinstance(encoder, Embedder) else str(encoder)
            out.append((f"embed-logreg-{name}", EmbeddingLogReg(encoder, seed=self.seed)))
        if self.tfidf:
            out.append(("tfidf", TfidfClassifier(seed=self.seed)))
        if len(out) < 2:
            raise ValueError("an ensemble needs at least two members: give two encoders, or keep tfidf")
        return out

    def fit(self, X: Sequence[str], y: Sequence[str]) -> StackedEnsemble:
        texts = check_texts(X)
        self.model_ = StackingClassifier(
            self.members(),
            final_estimator=LogisticRegression(max_iter=2000, random_state=self.seed),
            cv=StratifiedKFold(self.folds, shuffle=True, random_state=self.seed),
            stack_method="predict_proba",
        )
        self.model_.fit(np.array(texts, dtype=object), np.asarray(y))
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        return np.asarray(self.model_.predict_proba(np.array(check_texts(X), dtype=object)))
