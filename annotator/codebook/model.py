"""The codebook model (strict pydantic): labels with definitions, examples and rules, the uncertain label."""

from __future__ import annotations

import functools
import hashlib
import json
import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
MULTILABEL_SEPARATOR = ";"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class LabelExamples(_Strict):
    """Texts that are (positive) and are not (negative) instances of a label."""

    positive: list[str] = Field(default_factory=list)
    negative: list[str] = Field(default_factory=list)


class Label(_Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[^;\n]+$")
    definition: str = Field(min_length=1)
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    examples: LabelExamples = Field(default_factory=LabelExamples)
    value: float | None = None  # numeric position on an ordinal scale; defaults to the label's index


class UncertainLabel(_Strict):
    """The optional label a coder may use when none of the labels can be decided."""

    name: str = Field(default="uncertain", min_length=1, max_length=64, pattern=r"^[^;\n]+$")
    definition: str = Field(min_length=1)


class Codebook(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    version: int = Field(ge=1)
    description: str = Field(min_length=1)
    instructions: str = ""
    kind: Literal["nominal", "ordinal", "multilabel"] = "nominal"
    labels: list[Label] = Field(min_length=2)
    uncertain: UncertainLabel | None = None

    @property
    def label_names(self) -> list[str]:
        """The substantive labels, in codebook order (the order of an ordinal scale)."""
        return [label.name for label in self.labels]

    @property
    def allowed_labels(self) -> list[str]:
        """Every label a coder may give: the substantive ones, then the uncertain one if any."""
        return self.label_names + ([self.uncertain.name] if self.uncertain else [])

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()

    def label_value(self, label: str) -> float | None:
        """Numeric value of a label on an ordinal scale (its ``value`` or its index)."""
        for i, item in enumerate(self.labels):
            if item.name == label:
                return item.value if item.value is not None else float(i)
        return None

    def normalize_label(self, raw: object) -> str | None:
        """Map a code as written by a coder to the codebook's spelling, or None if it is not a label.

        Matching ignores case and surrounding whitespace. A multi-label code is a ``;``-separated list;
        it normalises to the codebook-ordered, ``;``-joined canonical form.
        """
        if raw is None or (isinstance(raw, float) and math.isnan(raw)):
            return None
        if isinstance(raw, float) and raw.is_integer():
            raw = int(raw)  # a spreadsheet reads the code "1" as 1.0
        lookup = _label_lookup(tuple(self.allowed_labels))
        text = str(raw).strip()
        if self.kind != "multilabel":
            return lookup.get(text.lower())
        parts = [part.strip().lower() for part in text.split(MULTILABEL_SEPARATOR) if part.strip()]
        found = [lookup.get(part) for part in parts]
        if not found or any(label is None for label in found):
            return None
        return MULTILABEL_SEPARATOR.join(label for label in self.allowed_labels if label in found)


@functools.lru_cache(maxsize=256)
def _label_lookup(allowed: tuple[str, ...]) -> dict[str, str]:
    """Lowercase -> codebook spelling; keyed on the labels so equal codebooks share one dict."""
    return {label.lower(): label for label in allowed}
