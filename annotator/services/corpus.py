"""The project's documents and human codes: import a file of documents or of codes, import a bundled example,
split into dev and test, build a gold coder. The work is done in annotator.data; each is imported when it is
asked for, so a command loads only what it uses."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from annotator.data.corpus import CodesImported, DocumentsImported
    from annotator.data.example import ExampleImported
    from annotator.project import Project
    from annotator.store.models import SplitEvent


def import_documents(
    project: Project,
    path: str | Path,
    text: str = "text",
    id: str = "id",
    encoding: str | None = None,
    fmt: str | None = None,
    allow_multiline: bool = False,
) -> DocumentsImported:
    """Import a file of documents; columns other than id and text are kept as metadata."""
    from annotator.data.corpus import import_documents as run

    return run(project, path, text=text, id=id, encoding=encoding, fmt=fmt, allow_multiline=allow_multiline)


def import_codes(
    project: Project,
    path: str | Path,
    label: str = "label",
    id: str = "id",
    coder: str | None = None,
    coder_column: str | None = None,
    codebook: str | None = None,
    kind: str = "human",
    encoding: str | None = None,
    fmt: str | None = None,
    allow_multiline: bool = False,
) -> CodesImported:
    """Import human (or gold) codes, checked against the codebook: one coder, or a coder column."""
    from annotator.data.corpus import import_codes as run

    return run(
        project,
        path,
        label=label,
        id=id,
        coder=coder,
        coder_column=coder_column,
        codebook=codebook,
        kind=kind,
        encoding=encoding,
        fmt=fmt,
        allow_multiline=allow_multiline,
    )


def import_example(
    project: Project, name: str = "rotten-tomatoes", n: int | None = None, seed: int = 0, raters: int = 15
) -> ExampleImported:
    """Import a bundled example data set with its crowd coders (and gold label)."""
    from annotator.data.example import import_example as run

    return run(project, name=name, n=n, seed=seed, raters=raters)


def make_split(
    project: Project,
    test: float,
    seed: int,
    stratify_by: str | None = None,
    stratify_by_coder: str | None = None,
    force: bool = False,
    new_only: bool = False,
) -> SplitEvent:
    """Assign documents to dev and test (all, or ``new_only`` those without a split yet); recorded."""
    from annotator.data.splits import make_split as run

    return run(project, test, seed, stratify_by, stratify_by_coder, force, new_only)


def build_gold(
    project: Project,
    name: str,
    from_coders: list[str],
    rule: str = "majority",
    split: str | None = None,
    codebook: str | None = None,
) -> dict[str, Any]:
    """Create gold coder ``name`` from the strict majority label of ``from_coders``; returns the counts."""
    from annotator.data.gold import build_gold as run

    return run(project, name, from_coders, rule=rule, split=split, codebook=codebook)
