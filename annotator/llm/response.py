"""The answer a model must give, built from the codebook: a JSON object whose label is an enum of the
codebook's labels (plus its uncertain label), optionally with a rationale before it.

The schema goes to the server as ``response_format`` (servers that support it constrain decoding to it);
the same pydantic model validates what comes back. Output that does not validate is never mapped to a
label: the caller re-asks or stores it as invalid with its raw text.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from annotator.codebook import MULTILABEL_SEPARATOR, Codebook


@dataclass(frozen=True)
class Answer:
    label: str | None  # canonical label ('a;b' for multi-label), None when invalid
    rationale: str | None
    error: str | None  # why the output is invalid


def _build(labels: tuple[str, ...], multilabel: bool, reasoning: bool) -> type[BaseModel]:
    choice = Literal[labels]  # type: ignore[valid-type]
    fields: dict[str, Any] = {}
    if reasoning:  # first, so that the model reasons before it commits to a label
        fields["rationale"] = (str, Field(description="one or two sentences: why this label"))
    if multilabel:
        fields["labels"] = (list[choice], Field(description="every label that applies"))
    else:
        fields["label"] = (choice, Field(description="exactly one label from the codebook"))
    return create_model("Annotation", __config__=ConfigDict(extra="forbid"), **fields)


@lru_cache(maxsize=64)
def _cached(labels: tuple[str, ...], multilabel: bool, reasoning: bool) -> type[BaseModel]:
    return _build(labels, multilabel, reasoning)


def response_model(codebook: Codebook, reasoning: bool = False) -> type[BaseModel]:
    return _cached(tuple(codebook.allowed_labels), codebook.kind == "multilabel", reasoning)


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


def response_format(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAI's structured-output request (also understood by Groq, vLLM and llama.cpp's server)."""
    return {
        "type": "json_schema",
        "json_schema": {"name": "annotation", "strict": True, "schema": json_schema(model)},
    }


def _strip_fence(text: str) -> str:
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.strip("`")
        stripped = stripped.removeprefix("json").strip()
    return stripped


def parse_answer(content: str | None, model: type[BaseModel], codebook: Codebook) -> Answer:
    """Validate a model's output against the response model; never guess a label."""
    if content is None or not content.strip():
        return Answer(None, None, "empty answer")
    try:
        parsed = model.model_validate_json(_strip_fence(content))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        detail = f"{where}: {first['msg']}" if where else first["msg"]
        return Answer(None, None, f"does not match the codebook's answer schema ({detail})")
    data = parsed.model_dump()
    rationale = data.get("rationale")
    if "labels" in data:
        chosen = set(data["labels"])
        if not chosen:
            return Answer(None, rationale, "no label chosen")
        label = MULTILABEL_SEPARATOR.join(name for name in codebook.allowed_labels if name in chosen)
    else:
        label = data["label"]
    return Answer(label, rationale, None)


class Validator:
    """`parse_answer` for one run's answers, each distinct answer text validated once.

    Answers repeat: a cached re-run of 10,000 labels holds a handful of distinct texts (``{"label":
    "positive"}``...). An `Answer` depends only on the text, the response model and the codebook, and is
    immutable, so it is kept; validating costs about 5 µs, a look-up 0.1 µs. At most ``size`` texts are kept
    (answers with rationales rarely repeat: beyond that they are validated each time)."""

    def __init__(self, model: type[BaseModel], codebook: Codebook, size: int = 4096) -> None:
        self.model = model
        self.codebook = codebook
        self.size = size
        self._seen: dict[str | None, Answer] = {}

    def __call__(self, content: str | None) -> Answer:
        answer = self._seen.get(content)
        if answer is None:
            answer = parse_answer(content, self.model, self.codebook)
            if len(self._seen) < self.size:
                self._seen[content] = answer
        return answer


def label_probability(content: str, logprobs: list[dict[str, Any]] | None, label: str) -> float | None:
    """The probability the model gave the tokens of the label value in its JSON answer: exp of the sum of
    their log-probabilities (under the schema constraint, the choice among the codebook's labels).

    None when the server sent no log-probabilities or the label cannot be located in the tokens.
    """
    if not logprobs or not label:
        return None
    needle = json.dumps(label, ensure_ascii=False)  # the label as it appears in JSON, with quotes
    start = content.find(needle)
    if start < 0:
        return None
    start += 1  # inside the quotes
    end = start + len(needle) - 2
    total, offset, hit = 0.0, 0, False
    for entry in logprobs:
        token = entry.get("token", "")
        token_start, offset = offset, offset + len(token)
        if offset <= start or token_start >= end:
            continue
        lp = entry.get("logprob")
        if lp is None:
            return None
        total += float(lp)
        hit = True
    return math.exp(total) if hit else None
