"""A task-specific Hugging Face text-classification model (e.g. a RoBERTa sentiment model), its labels mapped
to the codebook's.

The mapping comes from the model's own label names where they equal codebook labels (ignoring case), or from
``label_map`` (``{"NEG": "negative", "POS": "positive", "NEU": None}``). A model label mapped to None is left
out before the argmax (the reference notebook ignored RoBERTa's neutral score this way); the probability is
renormalised over the labels kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from annotator.baselines.base import Baseline, check_texts, softmax
from annotator.errors import InputError, arg

BatchProgress = Callable[[int, int], None]


class LabelMapError(InputError, ValueError):
    """A ``label_map`` that does not fit the model's or the codebook's labels (a ValueError, as an estimator
    raises; an InputError, whose message names the parameter as the caller spells it)."""


class LabelMap(dict[str, str | None]):
    """A label map named in an error: a Python caller reads the dict, the CLI its ``NEG=negative,NEU=-``."""

    def __str__(self) -> str:
        return ",".join(f"{k}={'-' if v is None else v}" for k, v in self.items())


def map_model_labels(
    model_labels: Sequence[str], codebook_labels: Sequence[str], label_map: dict[str, str | None] | None
) -> dict[str, str | None]:
    """Each model label's codebook label (None: ignored). Raises LabelMapError (a ValueError) naming what is
    unmapped."""
    lookup = {c.lower(): c for c in codebook_labels}
    given = {k.lower(): v for k, v in (label_map or {}).items()}
    unknown_keys = sorted(set(given) - {m.lower() for m in model_labels})
    if unknown_keys:
        raise LabelMapError(
            f"{arg('label_map', LabelMap(label_map or {}))}: names {', '.join(unknown_keys)}, which the model "
            "does not have "
            f"(its labels: {', '.join(model_labels)})"
        )
    mapping: dict[str, str | None] = {}
    for name in model_labels:
        if name.lower() in given:
            target = given[name.lower()]
            if target is not None and target.lower() not in lookup:
                raise LabelMapError(
                    f"{arg('label_map', LabelMap(label_map or {}))}: maps {name} to {target!r}, which is not a "
                    "codebook label "
                    f"({', '.join(codebook_labels)})"
                )
            mapping[name] = lookup[target.lower()] if target is not None else None
        elif name.lower() in lookup:
            mapping[name] = lookup[name.lower()]
        else:
            example = LabelMap(dict.fromkeys(model_labels, "LABEL"))
            raise LabelMapError(
                f"the model's label {name!r} is not a codebook label ({', '.join(codebook_labels)}); map every "
                f"model label with {arg('label_map', example)} (LABEL '-' leaves a model label out)"
            )
    if not any(mapping.values()):
        raise LabelMapError(
            f"{arg('label_map', LabelMap(label_map or {}))}: leaves no model label mapped to a codebook label"
        )
    return mapping


class HFClassifier(Baseline):
    """``model``: a Hugging Face id or folder of a sequence-classification model; no training."""

    def __init__(
        self,
        model: str = "cardiffnlp/twitter-roberta-base-sentiment-latest",
        labels: Sequence[str] = ("negative", "positive"),
        label_map: dict[str, str | None] | None = None,
        batch_size: int = 32,
        max_length: int = 256,
        progress: BatchProgress | None = None,
    ):
        self.model = model
        self.labels = labels
        self.label_map = label_map
        self.batch_size = batch_size
        self.max_length = max_length
        self.progress = progress

    def fit(self, X: Sequence[str] | None = None, y: Sequence[str] | None = None) -> HFClassifier:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from annotator.baselines.hub import local_model, quiet_transformers

        quiet_transformers()
        folder = local_model(self.model)  # a model that is not on disk fails at once, without hub retries
        self.tokenizer_: Any = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.model_: Any = AutoModelForSequenceClassification.from_pretrained(
            folder, local_files_only=True
        ).eval()
        id2label = self.model_.config.id2label
        model_labels = [str(id2label[i]) for i in range(len(id2label))]
        self.mapping_ = map_model_labels(model_labels, list(self.labels), self.label_map)
        self.kept_ = [i for i, name in enumerate(model_labels) if self.mapping_[name] is not None]
        targets = [str(self.mapping_[model_labels[i]]) for i in self.kept_]
        order = list(self.labels)
        self.classes_ = np.array(sorted(set(targets), key=order.index), dtype=object)
        # several model labels may map to one codebook label: their probabilities add up
        self.merge_ = np.zeros((len(self.kept_), len(self.classes_)))
        for row, target in enumerate(targets):
            self.merge_[row, list(self.classes_).index(target)] = 1.0
        return self

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        import torch

        texts = check_texts(X)
        out = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer_(
                texts[start : start + self.batch_size],
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=self.max_length,
            )
            with torch.inference_mode():
                logits = self.model_(**batch).logits.float().numpy()
            out.append(softmax(logits[:, self.kept_]) @ self.merge_)
            if self.progress:
                self.progress(min(start + self.batch_size, len(texts)), len(texts))
        return np.concatenate(out) if out else np.zeros((0, len(self.classes_)))
