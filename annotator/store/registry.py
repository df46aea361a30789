"""Codebook and prompt versions in the database.

A codebook or template is registered (name, version, sha256, body) the first time data depends on it: a
human import, a freeze, a run. A file that changed but kept a registered version is refused: results
recorded under that version would otherwise silently mean something else.
"""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session, col, select

from annotator.codebook import Codebook, load_codebook, parse_codebook
from annotator.errors import CodebookError, VersionConflictError, arg
from annotator.project import Project
from annotator.prompts import PromptRef, PromptTemplate, load_prompt, parse_ref
from annotator.store.models import CodebookVersion, PromptVersion, utcnow


def codebook_files(project: Project) -> list[Path]:
    return sorted(project.codebooks_dir.glob("*.y*ml"))


def project_codebook(project: Project, name: str | None = None) -> Codebook:
    """The project's current codebook ``name`` (its file ``codebooks/NAME.yaml``); with no name, the only one."""
    if name is None:
        files = codebook_files(project)
        if len(files) != 1:
            found = ", ".join(f.stem for f in files) or "none"
            raise CodebookError(
                f"say which codebook with {arg('codebook', 'NAME')} (codebooks in {project.codebooks_dir}: {found})"
            )
        return load_codebook(files[0])
    path = project.codebook_path(name)
    if not path.is_file():
        found = ", ".join(f.stem for f in codebook_files(project)) or "none yet"
        raise CodebookError(f"no codebook {name!r}: {path} does not exist (codebooks: {found})")
    codebook = load_codebook(path)
    if codebook.name != name:
        raise CodebookError(f"{path}: declares name: {codebook.name}; the file name and the name must match")
    return codebook


def find_codebook_version(session: Session, name: str, version: int) -> CodebookVersion | None:
    return session.exec(
        select(CodebookVersion).where(
            col(CodebookVersion.name) == name, col(CodebookVersion.version) == version
        )
    ).first()


def register_codebook(session: Session, codebook: Codebook, source: str = "") -> CodebookVersion:
    """The stored row for this codebook version, created on first use; a changed body is refused."""
    from annotator.codebook import to_yaml

    row = find_codebook_version(session, codebook.name, codebook.version)
    if row is None:
        row = CodebookVersion(
            name=codebook.name, version=codebook.version, sha256=codebook.sha256, body=to_yaml(codebook)
        )
        session.add(row)
        session.flush()
        return row
    if row.sha256 != codebook.sha256:
        where = source or f"codebook {codebook.name}"
        raise VersionConflictError(
            f"{where} changed but still says version: {codebook.version}, which is registered with other content; "
            f"set version: {latest_codebook_version(session, codebook.name) + 1} "
            f"(`annotator codebook diff {codebook.name}@{codebook.version} {source or codebook.name}` shows the change)"
        )
    return row


def latest_codebook_version(session: Session, name: str) -> int:
    rows = session.exec(select(CodebookVersion.version).where(col(CodebookVersion.name) == name)).all()
    return max(rows, default=0)


def stored_codebook(session: Session, name: str, version: int) -> Codebook:
    row = find_codebook_version(session, name, version)
    if row is None:
        known = sorted(
            session.exec(select(CodebookVersion.version).where(col(CodebookVersion.name) == name)).all()
        )
        raise CodebookError(
            f"codebook {name}@{version} is not registered (registered versions of {name}: "
            f"{', '.join(map(str, known)) or 'none'})"
        )
    return parse_codebook(row.body, source=f"{name}@{version} (database)")


def find_prompt_version(session: Session, ref: PromptRef) -> PromptVersion | None:
    return session.exec(
        select(PromptVersion).where(
            col(PromptVersion.codebook) == ref.codebook,
            col(PromptVersion.name) == ref.name,
            col(PromptVersion.version) == ref.version,
        )
    ).first()


def register_prompt(session: Session, template: PromptTemplate) -> PromptVersion:
    """The stored row for this template version, created on first use; a changed file is refused."""
    row = find_prompt_version(session, template.ref)
    if row is None:
        row = PromptVersion(
            codebook=template.ref.codebook,
            name=template.ref.name,
            version=template.ref.version,
            sha256=template.sha256,
            body=template.text,
            params=template.meta.params.model_dump(exclude_none=True),
        )
        session.add(row)
        session.flush()
        return row
    if row.sha256 != template.sha256:
        ref = template.ref
        raise VersionConflictError(
            f"{template.path} changed since {ref} was registered; keep versions immutable: save your edit as a "
            f"new version (`annotator prompt new {ref.codebook}/{ref.name} --from {ref}`) and restore this one "
            f"(`annotator prompt show {ref} --registered` prints the registered text)"
        )
    return row


def prompt_status(session: Session, template: PromptTemplate) -> str:
    """'new' (never used), 'registered', 'frozen' or 'CHANGED' (file differs from the registered version)."""
    row = find_prompt_version(session, template.ref)
    if row is None:
        return "new"
    if row.sha256 != template.sha256:
        return "CHANGED"
    return "frozen" if row.frozen_at else "registered"


def freeze_prompt(project: Project, ref_text: str) -> tuple[PromptVersion, bool]:
    """Record when a prompt was frozen; only frozen prompts may run on the test split.

    Returns the row and whether this call froze it (False: it was frozen before, and stays as it was).
    """
    ref = parse_ref(ref_text)
    template = load_prompt(project.prompts_dir, ref)
    codebook = project_codebook(project, ref.codebook)
    template.check_examples(codebook)
    with project.transaction() as session:
        register_codebook(session, codebook, str(project.codebook_path(ref.codebook)))
        row = register_prompt(session, template)
        if row.frozen_at is not None:
            return row, False
        row.frozen_at = utcnow()
        row.frozen_codebook_sha256 = codebook.sha256
        session.add(row)
    return row, True
