"""Prompt templates as a user asks about them: the project's templates and their status, one template's file
or registered text, the messages for one document, diff, a new version, and freezing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlmodel import col, select

from annotator.codebook import Codebook
from annotator.errors import InputError, TemplateError, arg
from annotator.project import Project
from annotator.prompts import (
    DocumentInput,
    Message,
    PromptRef,
    PromptTemplate,
    list_prompts,
    load_prompt,
    new_prompt,
    parse_ref,
    prompt_diff,
)
from annotator.store.models import Document
from annotator.store.registry import find_prompt_version, freeze_prompt, project_codebook, prompt_status

__all__ = [
    "Frozen",
    "NewPrompt",
    "PromptListing",
    "Rendered",
    "diff",
    "freeze",
    "list_templates",
    "new",
    "registered_text",
    "render",
    "template",
]


@dataclass(frozen=True)
class PromptListing:
    """One template file: ``status`` is new, registered, frozen <when>, CHANGED, or BROKEN: why."""

    prompt: str
    sha256: str
    status: str
    description: str


def list_templates(project: Project) -> list[PromptListing]:
    """Every template in prompts/, with its hash and whether it is registered, frozen or changed."""
    rows = []
    with project.transaction() as session:
        for ref in list_prompts(project.prompts_dir):
            try:
                loaded = load_prompt(project.prompts_dir, ref)
            except TemplateError as exc:
                rows.append(PromptListing(str(ref), "-", f"BROKEN: {exc}", ""))
                continue
            row = find_prompt_version(session, ref)
            status = prompt_status(session, loaded)
            if status == "frozen" and row and row.frozen_at:
                status = f"frozen {row.frozen_at:%Y-%m-%d %H:%M}"
            rows.append(PromptListing(str(ref), loaded.sha256[:12], status, loaded.meta.description))
    return rows


def template(project: Project, ref: str) -> PromptTemplate:
    """The template file ``ref`` of the project, parsed."""
    return load_prompt(project.prompts_dir, ref)


def registered_text(project: Project, ref: str) -> str:
    """The text registered in the database for ``ref`` (refused when it is not registered yet)."""
    with project.transaction() as session:
        row = find_prompt_version(session, parse_ref(ref))
    if row is None:
        raise TemplateError(f"{ref} is not registered yet (it is registered when first frozen or run)")
    return row.body


@dataclass(frozen=True)
class Rendered:
    """The exact messages a model would receive for one document."""

    template: PromptRef
    codebook: Codebook
    document: str  # the user's id of the document
    messages: list[Message]


def render(project: Project, ref: str, doc: str | None = None) -> Rendered:
    """Render template ``ref`` for document ``doc`` (the user's id; default: the first document)."""
    loaded = load_prompt(project.prompts_dir, ref)
    codebook = project_codebook(project, loaded.ref.codebook)
    with project.transaction() as session:
        query = select(Document).order_by(col(Document.id))
        document = session.exec(query if doc is None else query.where(col(Document.doc_key) == doc)).first()
    if document is None:
        if doc is None:
            raise InputError("no documents yet; import some first (`annotator import docs FILE`)")
        raise InputError(
            f"{arg('doc', doc)}: no document has that id; `annotator status` shows how many are imported"
        )
    messages = loaded.render(
        codebook, DocumentInput(id=document.doc_key, text=document.text, meta=document.meta)
    )
    return Rendered(loaded.ref, codebook, document.doc_key, list(messages))


def diff(project: Project, a: str, b: str) -> str:
    """A unified diff of two templates' texts ("" when they are identical)."""
    return prompt_diff(load_prompt(project.prompts_dir, a), load_prompt(project.prompts_dir, b))


@dataclass(frozen=True)
class NewPrompt:
    ref: PromptRef
    path: Path


def new(project: Project, name: str, from_ref: str) -> NewPrompt:
    """A new template (or the next version of one), a copy of ``from_ref``; never overwrites a file."""
    ref = new_prompt(project.prompts_dir, name, from_ref)
    return NewPrompt(ref, project.prompts_dir / ref.codebook / f"{ref.name}.v{ref.version}.jinja")


@dataclass(frozen=True)
class Frozen:
    ref: str
    sha256: str
    frozen_at: datetime | None
    froze: bool  # False: it was frozen before, and stays as it was


def freeze(project: Project, ref: str) -> Frozen:
    """Record that template ``ref`` is final: only frozen prompts may run on the test split."""
    row, froze = freeze_prompt(project, ref)
    return Frozen(row.ref, row.sha256, row.frozen_at, froze)
