"""Sentence-embedding baselines: logistic regression on embeddings, nearest class centroid, and zero-shot
similarity to label descriptions built from the codebook.

Embeddings are L2-normalised and cached in the project database per (model, sha256 of the text), so a second
baseline on the same texts, or the same baseline again, does not encode them again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sqlmodel import col, select

from annotator.baselines.base import Baseline, check_texts, softmax
from annotator.baselines.hub import quiet_transformers, resolve_encoder
from annotator.data.corpus import sha256_text
from annotator.project import Project
from annotator.store.db import insert_ignore
from annotator.store.models import Embedding

EncodeProgress = Callable[[int, int], None]  # (texts encoded so far, texts to encode)
CHUNK = 1024  # texts per encode call (progress granularity); the model batches inside it
IN_LIMIT = 900  # hashes per IN (...) query
_LOADED: dict[str, Any] = {}  # loaded models by path: several baselines in one process load each once


class Embedder:
    """Encodes texts with a sentence-transformers model; with a project, through its embedding cache.

    ``model`` is ``minilm`` (the offline default), ``mpnet``, a model folder, or a Hugging Face id.
    ``stats`` counts texts encoded and texts read from the cache.
    """

    def __init__(
        self,
        model: str = "minilm",
        project: Project | None = None,
        batch_size: int = 64,
        progress: EncodeProgress | None = None,
    ) -> None:
        self.name = model
        self.path, self.identity = resolve_encoder(model)
        self.project = project
        self.batch_size = batch_size
        self.progress = progress
        self.stats = {"encoded": 0, "cached": 0}
        self._model: Any = None

    def __deepcopy__(self, memo: dict[int, Any]) -> Embedder:
        return self  # scikit-learn's clone() copies parameters: share the model and cache instead

    def _load(self) -> Any:
        if self._model is None:
            if self.path not in _LOADED:
                from sentence_transformers import SentenceTransformer

                quiet_transformers()
                _LOADED[self.path] = SentenceTransformer(self.path, device="cpu")
            self._model = _LOADED[self.path]
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One normalised float32 row per text (cached vectors read back, the rest encoded and stored)."""
        texts = list(texts)
        hashes = [sha256_text(t) for t in texts]
        unique: dict[str, str] = {}
        for h, t in zip(hashes, texts, strict=True):
            unique.setdefault(h, t)
        vectors = self._read(list(unique)) if self.project is not None else {}
        self.stats["cached"] += sum(h in vectors for h in hashes)
        missing = [h for h in unique if h not in vectors]
        if missing:
            vectors.update(self._encode({h: unique[h] for h in missing}))
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([vectors[h] for h in hashes])

    def _encode(self, todo: dict[str, str]) -> dict[str, np.ndarray]:
        model = self._load()
        order = sorted(todo, key=lambda h: len(todo[h]))  # similar lengths together: less padding
        out: dict[str, np.ndarray] = {}
        for start in range(0, len(order), CHUNK):
            chunk = order[start : start + CHUNK]
            matrix = model.encode(
                [todo[h] for h in chunk],
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            ).astype(np.float32)
            batch = dict(zip(chunk, matrix, strict=True))
            self._write(batch)
            out.update(batch)
            self.stats["encoded"] += len(chunk)
            if self.progress:
                self.progress(min(start + CHUNK, len(order)), len(order))
        return out

    def _read(self, hashes: list[str]) -> dict[str, np.ndarray]:
        assert self.project is not None
        found: dict[str, np.ndarray] = {}
        with self.project.transaction() as session:
            for start in range(0, len(hashes), IN_LIMIT):
                rows = session.exec(
                    select(Embedding.text_sha256, Embedding.vector).where(
                        col(Embedding.model) == self.identity,
                        col(Embedding.text_sha256).in_(hashes[start : start + IN_LIMIT]),
                    )
                ).all()
                for h, blob in rows:
                    found[h] = np.frombuffer(blob, dtype=np.float32)
        return found

    def _write(self, vectors: dict[str, np.ndarray]) -> None:
        if self.project is None or not vectors:
            return
        rows = [
            {"model": self.identity, "text_sha256": h, "dim": int(v.shape[0]), "vector": v.tobytes()}
            for h, v in vectors.items()
        ]
        with self.project.transaction() as session:
            insert_ignore(session, Embedding, rows, ["model", "text_sha256"])


def _embedder(value: str | Embedder) -> Embedder:
    return value if isinstance(value, Embedder) else Embedder(value)


class EmbeddingLogReg(Baseline):
    """Logistic regression on sentence embeddings (the reference notebook's best classical approach)."""

    def __init__(
        self, embedder: str | Embedder = "minilm", C: float = 1.0, max_iter: int = 2000, seed: int = 0
    ):
        self.embedder = embedder
        self.C = C
        self.max_iter = max_iter
        self.seed = seed

    def fit(self, X: Sequence[str], y: Sequence[str]) -> EmbeddingLogReg:
        self.embedder_ = _embedder(self.embedder)
        features = self.embedder_.encode(check_texts(X))
        self.model_ = LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.seed)
        self.model_.fit(features, np.asarray(y))
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        return np.asarray(self.model_.predict_proba(self.embedder_.encode(check_texts(X))))


class EmbeddingCentroid(Baseline):
    """Cosine similarity to each class's mean training embedding; no classifier. ``predict_proba`` is a
    softmax of the similarities (scaled by ``temperature``): an ordering, not a calibrated probability.

    ``normalize=False`` compares with the raw mean instead (a dot product, so the class whose mean is longer
    is favoured): what a plain script that skips the renormalisation computes, kept to reproduce its figures.
    """

    def __init__(
        self, embedder: str | Embedder = "minilm", temperature: float = 0.05, normalize: bool = True
    ):
        self.embedder = embedder
        self.temperature = temperature
        self.normalize = normalize

    def fit(self, X: Sequence[str], y: Sequence[str]) -> EmbeddingCentroid:
        self.embedder_ = _embedder(self.embedder)
        features = self.embedder_.encode(check_texts(X))
        labels = np.asarray(y)
        self.classes_ = np.array(sorted(set(labels.tolist())), dtype=object)
        centroids = np.stack([features[labels == c].mean(axis=0) for c in self.classes_])
        if self.normalize:
            centroids = centroids / np.linalg.norm(centroids, axis=1, keepdims=True)
        self.centroids_ = centroids
        return self

    def similarities(self, X: Sequence[str]) -> np.ndarray:
        return np.asarray(self.embedder_.encode(check_texts(X)) @ self.centroids_.T)

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        return softmax(self.similarities(X) / self.temperature)


class EmbeddingZeroShot(EmbeddingCentroid):
    """Cosine similarity to the embedding of each label's description; needs no training labels.

    ``label_texts`` maps each label to the text it is compared with (built from the codebook by the runner);
    ``fit`` only embeds those texts (its arguments are ignored, so it composes with scikit-learn).
    """

    def __init__(
        self,
        embedder: str | Embedder = "minilm",
        label_texts: dict[str, str] | None = None,
        temperature: float = 0.05,
    ):
        self.embedder = embedder
        self.label_texts = label_texts
        self.temperature = temperature

    def fit(self, X: Sequence[str] | None = None, y: Sequence[str] | None = None) -> EmbeddingZeroShot:
        if not self.label_texts:
            raise ValueError("EmbeddingZeroShot needs label_texts: {label: description}")
        self.embedder_ = _embedder(self.embedder)
        self.classes_ = np.array(list(self.label_texts), dtype=object)
        self.centroids_ = self.embedder_.encode([self.label_texts[c] for c in self.classes_])
        return self
