"""Prompt references: ``CODEBOOK/NAME.vN`` and the file each names."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from annotator.errors import TemplateError

_NAME = r"[a-z0-9][a-z0-9_-]*"
_REF_RE = re.compile(rf"^({_NAME})/({_NAME})\.v([1-9][0-9]*)$")
_FILE_RE = re.compile(rf"^({_NAME})\.v([1-9][0-9]*)\.jinja$")
_REF_HINT = "write CODEBOOK/NAME.vN, e.g. sentiment/zero-shot.v1 (`annotator prompt list` shows them)"


@dataclass(frozen=True)
class PromptRef:
    codebook: str
    name: str
    version: int

    def __str__(self) -> str:
        return f"{self.codebook}/{self.name}.v{self.version}"

    @property
    def filename(self) -> str:
        return f"{self.codebook}/{self.name}.v{self.version}.jinja"


def parse_ref(text: str) -> PromptRef:
    """Read ``sentiment/zero-shot.v2`` or a path ending in ``sentiment/zero-shot.v2.jinja``."""
    cleaned = str(text).strip().replace("\\", "/")
    if cleaned.endswith(".jinja"):
        cleaned = "/".join(cleaned[: -len(".jinja")].split("/")[-2:])
    match = _REF_RE.match(cleaned)
    if not match:
        raise TemplateError(f"{text!r} is not a prompt reference: {_REF_HINT}")
    return PromptRef(match[1], match[2], int(match[3]))


def _display(path: Path) -> str:
    """The path as the user should see it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
