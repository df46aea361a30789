"""Errors a user can fix. The CLI prints their message as one line and exits with status 2.

Anything else is a bug and stays a traceback. The statistics (annotator.stats, which imports nothing of
annotator) raise their own DataError, a ValueError; it is re-exported here and printed the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from annotator.stats.errors import DataError as DataError  # re-exported: the CLI catches it from here

_FLAG = object()  # arg(name) without a value: a switch that is set
_MARK = re.compile("\x1f([A-Za-z_][A-Za-z0-9_]*)(?:\x1e(.*?)\x1d(.*?))?\x1f", re.S)

# (name, str(value) or None for a switch, repr(value) or None) -> the text a reader sees
Namer = Callable[[str, str | None, str | None], str]


def arg(name: str, value: object = _FLAG) -> str:
    """A parameter named in an error message, by its Python name: ``arg("n_boot", 0)``, or ``arg("force")``
    for a switch to set.

    A Python caller reads ``n_boot=0`` and ``force=True`` (``str(error)``); the CLI reads the flag it maps the
    parameter to, ``--bootstrap 0`` and ``--force`` (`annotator.cli.flags`). Services name what their caller
    passed; only the face knows its own spelling.
    """
    if value is _FLAG:
        return f"\x1f{name}\x1f"
    return f"\x1f{name}\x1e{value}\x1d{value!r}\x1f"


def named(name: str) -> str:
    """A parameter named in an error message without a value (``choose another out``): a Python caller reads
    ``out``, the CLI its flag, ``--out``."""
    return f"\x1f{name}\x1e\x1d\x1f"


def python_arg(name: str, text: str | None, python: str | None) -> str:
    """How a Python caller reads a parameter: ``name=value`` (a switch: ``name=True``; named only: ``name``)."""
    if python == "":
        return name
    return f"{name}={'True' if python is None else python}"


def render(message: str, namer: Namer = python_arg) -> str:
    """``message`` with every `arg` marker spelled by ``namer`` (default: as a Python caller passes it)."""
    return _MARK.sub(lambda m: namer(m.group(1), m.group(2), m.group(3)), message)


class AnnotatorError(Exception):
    """A user mistake: the message names the file/line/value and says what to do.

    Parameters in the message are `arg` markers: ``str(error)`` names them as a Python caller passed them,
    ``error.message(namer)`` as another face spells them (the CLI: its flags).
    """

    exit_code = 2

    def message(self, namer: Namer = python_arg) -> str:
        return render(str(self.args[0]) if self.args else "", namer)

    def __str__(self) -> str:
        return self.message()


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


class Listed(list):
    """A list named in an error (`annotator.errors.arg`): a Python caller reads ``['a', 'b']``, the CLI the
    comma list its flags take, ``a,b``."""

    def __str__(self) -> str:
        return ",".join(map(str, self))
