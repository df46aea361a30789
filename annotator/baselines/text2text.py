"""Text-to-text models (T5, flan-T5) through transformers: a prompt built from the codebook, greedy decoding,
the output matched to a label.

The reference notebook mapped anything that was not "negative" to positive; here an output that does not
name exactly one label (ignoring case, spaces and punctuation) is stored invalid with the raw output.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from annotator.baselines.base import Baseline, Prediction, check_texts

BatchProgress = Callable[[int, int], None]
_WORD = re.compile(r"[^\w]+")


def match_label(output: str, labels: Sequence[str]) -> str | None:
    """The label an output names: the whole output, or its first word(s), equal to one label."""
    words = _WORD.sub(" ", output.lower()).split()
    if not words:
        return None
    by_words = {tuple(_WORD.sub(" ", label.lower()).split()): label for label in labels}
    whole = by_words.get(tuple(words))
    if whole is not None:
        return whole
    starts = [label for key, label in by_words.items() if key and tuple(words[: len(key)]) == key]
    return starts[0] if len(starts) == 1 else None


def default_prompt(concept: str, labels: Sequence[str]) -> str:
    """The reference notebook's prompt shape, with the codebook's name and labels."""
    options = " or ".join(label.capitalize() for label in labels)
    return f"Classify {concept}: {options}? {{text}}"


class Text2Text(Baseline):
    """``model``: a Hugging Face id or folder of a seq2seq model; ``prompt`` holds ``{text}``. An id is read
    from the local Hugging Face cache only (``annotator.baselines.hub.local_model``)."""

    def __init__(
        self,
        model: str = "google/flan-t5-small",
        prompt: str = "Classify sentiment: Negative or Positive? {text}",
        labels: Sequence[str] = ("negative", "positive"),
        max_new_tokens: int = 8,
        batch_size: int = 16,
        max_length: int = 256,
        seed: int = 0,
        progress: BatchProgress | None = None,
    ):
        self.model = model
        self.prompt = prompt
        self.labels = labels
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.max_length = max_length
        self.seed = seed
        self.progress = progress

    def fit(self, X: Sequence[str] | None = None, y: Sequence[str] | None = None) -> Text2Text:
        from annotator.baselines.hub import local_model, quiet_transformers

        if "{text}" not in self.prompt:
            raise ValueError("the prompt must contain {text}")
        folder = local_model(self.model)  # never downloads: a model not on this machine fails here, at once
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        quiet_transformers()
        self.tokenizer_: Any = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.model_: Any = AutoModelForSeq2SeqLM.from_pretrained(folder, local_files_only=True).eval()
        self.classes_ = np.array(list(self.labels), dtype=object)
        return self

    def generate(self, X: Sequence[str]) -> list[str]:
        import torch

        torch.manual_seed(self.seed)
        texts = check_texts(X)
        outputs: list[str] = []
        for start in range(0, len(texts), self.batch_size):
            prompts = [self.prompt.replace("{text}", t) for t in texts[start : start + self.batch_size]]
            batch = self.tokenizer_(
                prompts, return_tensors="pt", padding=True, truncation=True, max_length=self.max_length
            )
            batch.pop("token_type_ids", None)
            with torch.inference_mode():
                generated = self.model_.generate(
                    **batch, max_new_tokens=self.max_new_tokens, do_sample=False, num_beams=1
                )
            outputs += self.tokenizer_.batch_decode(generated, skip_special_tokens=True)
            if self.progress:
                self.progress(min(start + self.batch_size, len(texts)), len(texts))
        return outputs

    def predict_rows(self, X: Sequence[str]) -> list[Prediction]:
        rows = []
        for output in self.generate(X):
            label = match_label(output, list(self.labels))
            rows.append(
                Prediction(label, None, "ok", output) if label else Prediction(None, None, "invalid", output)
            )
        return rows
