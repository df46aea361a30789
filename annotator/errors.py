"""Errors a user can fix. The CLI prints their message as one line and exits with status 2.

Anything else is a bug and stays a traceback. The statistics (annotator.stats, which imports nothing of
annotator) raise their own DataError, a ValueError; it is re-exported here and printed the same way.
"""

from __future__ import annotations

from annotator.stats.errors import DataError as DataError  # re-exported: the CLI catches it from here


class AnnotatorError(Exception):
    """A user mistake: the message names the file/line/value and says what to do."""

    exit_code = 2


class ProjectError(AnnotatorError):
    """No project found, or its configuration is broken."""


class InputError(AnnotatorError):
    """A data file the user gave is unreadable or inconsistent (columns, ids, encoding, labels)."""


class CodebookError(AnnotatorError):
    """A codebook file does not parse or validate. ``problems`` holds every problem found."""

    def __init__(self, message: str, problems: list | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class TemplateError(AnnotatorError):
    """A prompt template does not parse, refers to an undefined variable, or has a bad front matter."""


class VersionConflictError(AnnotatorError):
    """A codebook or prompt changed but kept a version number that is already registered."""


class DatabaseError(AnnotatorError):
    """The database cannot be used as it is (e.g. written by a newer annotator)."""


class SplitError(AnnotatorError):
    """A split request cannot be honoured (existing test split, bad fraction, unknown coder)."""


class ModelError(AnnotatorError):
    """A model (a local LLM or a baseline's encoder) is unknown, not pulled, cannot be downloaded, or its
    file is damaged."""
