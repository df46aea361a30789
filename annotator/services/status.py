"""What a project holds: documents per split, coders and their codes, runs, registered versions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from annotator.project import Project
from annotator.services.results import Result
from annotator.store import db, overview


class DocumentCounts(TypedDict):
    total: int
    dev: int
    test: int
    unassigned: int  # in no split yet


class SplitInfo(TypedDict):
    """The latest split assignment."""

    test_fraction: float
    seed: int
    stratify: str | None  # the coder or column it was stratified by
    forced: bool  # an existing test split was reassigned (--force)
    at: str  # ISO time, seconds


class CoderRow(TypedDict):
    name: str
    kind: str  # human, gold, llm, baseline
    runs: int
    codes: int  # answers and codes stored, every split
    dev: int  # of which on dev documents
    test: int  # of which on test documents


class RunRow(TypedDict):
    id: int
    coder: str
    kind: str
    codebook: str | None  # name@version
    model: str | None
    split: str
    status: str
    items: int
    invalid: int
    errors: int
    started: str  # ISO time, seconds


class PromptRow(TypedDict):
    ref: str
    sha256: str  # its first 12 hex digits
    frozen_at: str | None  # ISO time, seconds


@dataclass(frozen=True)
class Status(Result):
    """What a project holds (`annotator status`); ``to_json()`` is what ``status --json`` prints."""

    project: str  # the project's name
    root: str  # its folder
    database: str  # the database, described (a path or a URL without its password)
    schema: str | None  # the database's schema revision
    documents: DocumentCounts
    split: SplitInfo | None  # None before the first split
    coders: list[CoderRow]  # by kind, then in creation order
    runs: list[RunRow]  # unarchived, in id order
    archived_runs: int  # how many runs are archived (not listed)
    prompts: list[PromptRow]  # the registered prompt versions


def project_status(project: Project) -> Status:
    engine = project.engine
    with engine.connect() as conn:
        splits = overview.split_counts(conn)
        coders = overview.coder_counts(conn)
        runs = overview.runs(conn)
        prompts = overview.prompts(conn)
        last_split = overview.last_split(conn)
    return Status(
        project=project.name,
        root=str(project.root),
        database=db.describe(engine),
        schema=db.current_revision(engine),
        documents=DocumentCounts(
            total=sum(splits.values()),
            dev=splits.get("dev", 0),
            test=splits.get("test", 0),
            unassigned=splits.get(None, 0),
        ),
        split=None
        if last_split is None
        else SplitInfo(
            test_fraction=last_split["test_fraction"],
            seed=last_split["seed"],
            stratify=last_split["stratify"],
            forced=bool(last_split["forced"]),
            at=last_split["created_at"].isoformat(timespec="seconds"),
        ),
        coders=[
            CoderRow(name=n, kind=k, runs=r, codes=c, dev=dev, test=test) for n, k, r, c, dev, test in coders
        ],
        runs=[
            RunRow(
                id=run["id"],
                coder=run["coder"],
                kind=run["kind"],
                codebook=f"{run['codebook']}@{run['codebook_version']}" if run["codebook"] else None,
                model=run["model"],
                split=run["split"],
                status=run["status"],
                items=run["n_items"],
                invalid=run["n_invalid"],
                errors=run["n_error"],
                started=run["started_at"].isoformat(timespec="seconds"),
            )
            for run in runs
            if run["archived_at"] is None
        ],
        archived_runs=sum(run["archived_at"] is not None for run in runs),
        prompts=[
            PromptRow(
                ref=ref,
                sha256=sha[:12],
                frozen_at=frozen.isoformat(timespec="seconds") if frozen else None,
            )
            for ref, sha, frozen in prompts
        ],
    )
