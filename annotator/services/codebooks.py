"""Codebooks as a user asks about them: check a file, resolve a name, show, diff, and the project's status
(each file against the versions registered in the database)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import col, select

from annotator.codebook import Codebook, Problem, check_codebook, codebook_diff, load_codebook, to_yaml
from annotator.errors import CodebookError, arg
from annotator.project import Project
from annotator.store.models import CodebookVersion
from annotator.store.registry import codebook_files, project_codebook, stored_codebook

__all__ = [
    "CodebookCheck",
    "CodebookFile",
    "CodebookStatus",
    "StoredVersion",
    "canonical_yaml",
    "check_file",
    "codebook_status",
    "diff",
    "resolve",
]


@dataclass(frozen=True)
class CodebookCheck:
    """A codebook file checked: its codebook when it has no problem, else every problem (line and field)."""

    path: Path
    codebook: Codebook | None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_file(path: Path) -> CodebookCheck:
    problems = check_codebook(path)
    return CodebookCheck(path, None if problems else load_codebook(path), list(problems))


def resolve(spec: str, open_project: Callable[[], Project]) -> tuple[Codebook, str]:
    """A codebook from a file path, a project codebook name, or NAME@VERSION from the database, and the name
    to show for it. ``open_project`` is called only when ``spec`` is not a file (a file needs no project)."""
    path = Path(spec)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        return load_codebook(path), str(path)
    project = open_project()
    if "@" in spec:
        name, _, version = spec.partition("@")
        if not version.isdigit():
            raise CodebookError(
                f"{arg('spec', spec)}: write NAME@VERSION with a whole number, e.g. sentiment@1"
            )
        with project.transaction() as session:
            return stored_codebook(session, name, int(version)), spec
    return project_codebook(project, spec), str(project.codebook_path(spec))


def canonical_yaml(codebook: Codebook) -> str:
    return to_yaml(codebook)


def diff(a: Codebook, b: Codebook, name_a: str, name_b: str) -> str:
    """A unified diff of the two codebooks' canonical forms ("" when they have the same content)."""
    return codebook_diff(a, b, name_a, name_b)


@dataclass(frozen=True)
class CodebookFile:
    """One file in codebooks/: ``status`` is new, registered, CHANGED: bump its version, or BROKEN: why."""

    file: str
    codebook: str
    labels: str
    status: str


@dataclass(frozen=True)
class StoredVersion:
    """A registered version that no file in codebooks/ holds any more."""

    codebook: str
    sha256: str
    registered: str


@dataclass(frozen=True)
class CodebookStatus:
    codebooks_dir: Path
    files: list[CodebookFile]
    older_versions: list[StoredVersion]


def codebook_status(project: Project) -> CodebookStatus:
    """Each codebook file against the registered versions, and the registered versions no file holds."""
    with project.transaction() as session:
        registered = session.exec(
            select(CodebookVersion).order_by(col(CodebookVersion.name), col(CodebookVersion.version))
        ).all()
    known = {(r.name, r.version): r.sha256 for r in registered}
    files = []
    for path in codebook_files(project):
        try:
            cb = load_codebook(path)
        except CodebookError as exc:
            files.append(CodebookFile(path.name, "-", "-", f"BROKEN: {exc}"))
            continue
        sha = known.get((cb.name, cb.version))
        status = "new" if sha is None else "registered" if sha == cb.sha256 else "CHANGED: bump its version"
        files.append(CodebookFile(path.name, cb.ref, ", ".join(cb.allowed_labels), status))
    in_files = {f.codebook for f in files}
    older = [
        StoredVersion(f"{r.name}@{r.version}", r.sha256[:12], r.created_at.isoformat(timespec="seconds"))
        for r in registered
        if f"{r.name}@{r.version}" not in in_files
    ]
    return CodebookStatus(project.codebooks_dir, files, older)
