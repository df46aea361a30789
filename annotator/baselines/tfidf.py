"""TF-IDF features (word uni- and bigrams) with logistic regression or a linear SVM."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from annotator.baselines.base import Baseline, check_texts, softmax

CLASSIFIERS = ("logreg", "svm")


class TfidfClassifier(Baseline):
    """``classifier`` is ``logreg`` (probabilities) or ``svm`` (a linear SVM; its ``predict_proba`` is a
    softmax of the decision values, an ordering rather than a calibrated probability)."""

    def __init__(
        self,
        classifier: str = "logreg",
        C: float = 4.0,
        ngram_max: int = 2,
        min_df: int = 1,
        sublinear_tf: bool = True,
        seed: int = 0,
    ):
        self.classifier = classifier
        self.C = C
        self.ngram_max = ngram_max
        self.min_df = min_df
        self.sublinear_tf = sublinear_tf
        self.seed = seed

    def fit(self, X: Sequence[str], y: Sequence[str]) -> TfidfClassifier:
        if self.classifier not in CLASSIFIERS:
            raise ValueError(f"classifier must be one of {', '.join(CLASSIFIERS)}, not {self.classifier!r}")
        self.vectorizer_ = TfidfVectorizer(
            ngram_range=(1, self.ngram_max), min_df=self.min_df, sublinear_tf=self.sublinear_tf
        )
        features = self.vectorizer_.fit_transform(check_texts(X))
        if self.classifier == "svm":
            self.model_: LogisticRegression | LinearSVC = LinearSVC(C=self.C / 4, random_state=self.seed)
        else:
            self.model_ = LogisticRegression(C=self.C, max_iter=2000, random_state=self.seed)
        self.model_.fit(features, np.asarray(y))
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        features = self.vectorizer_.transform(check_texts(X))
        if isinstance(self.model_, LogisticRegression):
            return np.asarray(self.model_.predict_proba(features))
        scores = np.asarray(self.model_.decision_function(features))
        if scores.ndim == 1:  # two classes: one score, for classes_[1]
            scores = np.stack([-scores, scores], axis=1)
        return softmax(scores)
