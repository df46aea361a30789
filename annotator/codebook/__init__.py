"""Codebooks: the labels, definitions and rules that human coders and the LLM share.

A codebook is a YAML file in ``codebooks/``. It is parsed into strict pydantic models (unknown fields are
errors), and every problem is reported with its line and field. Its identity is ``name`` + ``version``; its
content hash (sha256 of the canonical JSON of the parsed model, so comments and whitespace do not count)
lets the store refuse a changed file that kept an already registered version.

The package: ``model`` (the pydantic model), ``parse`` (line-aware YAML and lint), ``yaml_io`` (writing a
codebook as YAML, diffing two).
"""

from annotator.codebook.model import (
    MULTILABEL_SEPARATOR,
    NAME_PATTERN,
    Codebook,
    Label,
    LabelExamples,
    UncertainLabel,
)
from annotator.codebook.parse import Problem, check_codebook, load_codebook, parse_codebook
from annotator.codebook.yaml_io import codebook_diff, to_yaml

__all__ = [
    "MULTILABEL_SEPARATOR",
    "NAME_PATTERN",
    "Codebook",
    "Label",
    "LabelExamples",
    "Problem",
    "UncertainLabel",
    "check_codebook",
    "codebook_diff",
    "load_codebook",
    "parse_codebook",
    "to_yaml",
]
