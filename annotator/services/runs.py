"""Listing and describing runs (every kind: imports, LLM runs, baselines)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal, TypedDict

from sqlalchemy import select as sa_select
from sqlmodel import col, func, select

from annotator.errors import AnnotatorError
from annotator.project import Project
from annotator.services.results import Result
from annotator.store.batches import open_batches
from annotator.store.lease import lease_alive
from annotator.store.models import (
    Annotation,
    CodebookVersion,
    Coder,
    CoderKind,
    PromptVersion,
    ProviderBatch,
    Run,
)
from annotator.store.retire import Retired, archive_run, delete_run, deletion_plan

__all__ = [
    "IMPORT_KINDS",
    "Retired",
    "RunDetail",
    "RunSummary",
    "archive",
    "delete",
    "deletion_plan",
    "list_runs",
    "restore",
    "show_run",
]


# a run's stored status, or `stale`: marked running, but its process is gone (see `_status`)
# `batch`: waiting for batches at the provider (`annotator run --batch`) with no process watching them
ShownStatus = Literal["running", "done", "interrupted", "failed", "stale", "batch"]


@dataclass(frozen=True)
class RunSummary(Result):
    """One run as `annotator runs` lists it; ``to_json()`` is one row of ``runs --json``."""

    id: int
    coder: str  # the coder's name (an LLM run's: its model)
    kind: CoderKind  # llm, baseline, human or gold
    model: str | None  # PROVIDER/MODEL; None for imports
    prompt: str | None  # the prompt's ref (CODEBOOK/NAME.vN)
    codebook: str | None  # name@version
    split: str | None  # the split the run labeled
    status: ShownStatus
    items: int  # answers planned (documents x repeats)
    ok: int  # answers with a codebook label (a running run: counted from its answers)
    invalid: int  # answers outside the codebook
    error: int  # items without an answer
    tokens_in: int
    tokens_out: int
    cost_usd: float  # US dollars, 6 decimals
    started: str  # ISO time, seconds
    finished: str | None  # ISO time, seconds; None while running
    elapsed_s: float | None  # seconds from start to finish, 1 decimal
    message: str | None  # why it failed or stopped early, or how to continue a stale run
    archived: str | None  # ISO time, seconds, when archived; None when it is not


class Problem(TypedDict):
    error: str | None  # the error (or why the answer is invalid)
    count: int  # answers with it


@dataclass(frozen=True)
class RunDetail(RunSummary):
    """Everything about one run (`annotator runs show`); ``to_json()`` is what ``runs show --json`` prints:
    the summary's keys, then these."""

    params: dict[str, Any]  # the model parameters (a baseline's or an import's: its parameters)
    sample: dict[str, Any]  # split, n, seed, repeats
    versions: dict[str, Any]  # software versions that made the run
    labels: dict[str, int]  # label -> ok answers with it
    cached: int  # answers from the cache
    mean_latency_ms: float | None  # milliseconds, 1 decimal
    problems: list[Problem]  # the five most frequent, most frequent first
    prompt_sha256: str | None
    prompt_frozen_at: str | None  # ISO time, seconds; None when not frozen
    spec_sha256: str | None  # an LLM run's spec hash
    source: str | None  # an import's file (name and sha256)


def _live(session: Any, runs: list[Run]) -> dict[int, dict[str, int]]:
    """Answer counts of runs still marked running: their stored counts are written when they finish, so a
    run that is working (or whose process died) is counted from its answers."""
    ids = [r.id for r in runs if r.status == "running" and r.id is not None]
    counts: dict[int, dict[str, int]] = {i: {} for i in ids}
    if ids:
        rows = session.exec(
            select(Annotation.run_id, Annotation.status, func.count())
            .where(col(Annotation.run_id).in_(ids))
            .group_by(col(Annotation.run_id), col(Annotation.status))
        ).all()
        for run_id, status, n in rows:
            counts[run_id][status] = n
    return counts


def _status(run: Run, batches: list[ProviderBatch] | None = None) -> tuple[ShownStatus, str | None]:
    """The status to show, and a note: a run marked running whose process is gone (kill -9, a crash, a
    reboot) is `stale` until a resume takes it over; one with batches open at the provider and no process
    watching them is `batch`, with their state as last seen."""
    alive = run.status == "running" and lease_alive(run)
    if batches:
        seen = "; ".join(
            f"{b.remote_id} {b.state}, {b.answered:,} of {b.n_requests:,} answered" for b in batches[:3]
        )
        note = f"batches at {batches[0].provider}: {seen} (as last seen)"
        if alive:
            return "running", note
        return "batch", f"{note}; `annotator run --resume {run.id}` collects the answers"
    if run.status == "running" and not alive:
        return "stale", f"its process is gone; `annotator run --resume {run.id}` continues it"
    return run.status, run.error


def _summary(
    run: Run,
    coder: str,
    codebook: str | None,
    prompt: str | None,
    live: dict[str, int] | None = None,
    batches: list[ProviderBatch] | None = None,
) -> RunSummary:
    assert run.id is not None  # a stored run
    elapsed = (run.finished_at - run.started_at).total_seconds() if run.finished_at else None
    status, message = _status(run, batches)
    ok, invalid, error = (
        (run.n_ok, run.n_invalid, run.n_error)
        if live is None
        else (live.get("ok", 0), live.get("invalid", 0), live.get("error", 0))
    )
    return RunSummary(
        id=run.id,
        coder=coder,
        kind=run.kind,
        model=run.model,
        prompt=prompt,
        codebook=codebook,
        split=run.split,
        status=status,
        items=run.n_items,
        ok=ok,
        invalid=invalid,
        error=error,
        tokens_in=run.tokens_in,
        tokens_out=run.tokens_out,
        cost_usd=round(run.cost_usd, 6),
        started=run.started_at.isoformat(timespec="seconds"),
        finished=run.finished_at.isoformat(timespec="seconds") if run.finished_at else None,
        elapsed_s=round(elapsed, 1) if elapsed is not None else None,
        message=message,
        archived=run.archived_at.isoformat(timespec="seconds") if run.archived_at else None,
    )


def _query(kind: str | None = None) -> Any:
    query = (
        sa_select(
            Run, col(Coder.name), col(CodebookVersion.name), col(CodebookVersion.version), PromptVersion
        )
        .join(Coder, col(Coder.id) == Run.coder_id)
        .outerjoin(CodebookVersion, col(CodebookVersion.id) == Run.codebook_id)
        .outerjoin(PromptVersion, col(PromptVersion.id) == Run.prompt_id)
        .order_by(col(Run.id))
    )
    return query if kind is None else query.where(col(Run.kind) == kind)


IMPORT_KINDS = ("human", "gold")  # runs that hold codes imported from a file, not labeled here


def list_runs(
    project: Project, kind: str | None = None, archived: bool = False, imports: bool = True
) -> list[RunSummary]:
    """Every run of ``kind`` (all kinds by default); archived runs only with ``archived``. With no ``kind``,
    ``imports=False`` leaves out the human and gold imports (what `annotator runs` lists: their coders have
    their own table in `annotator status`); a ``kind`` asked for is always listed."""
    query = _query(kind)
    if kind is None and not imports:
        query = query.where(col(Run.kind).not_in(IMPORT_KINDS))
    if not archived:
        query = query.where(col(Run.archived_at).is_(None))
    with project.transaction() as session:
        rows = session.exec(query).all()
        live = _live(session, [row[0] for row in rows])
        batches = open_batches(session, [row[0].id for row in rows if row[0].kind == "llm"])
    return [
        _summary(
            run,
            coder,
            f"{cb}@{v}" if cb else None,
            p.ref if p else None,
            live.get(run.id or -1),
            batches.get(run.id or -1),
        )
        for run, coder, cb, v, p in rows
    ]


def archive(project: Project, run_id: int) -> Retired:
    """Hide a run from listings, default comparisons and the report; it stays with every answer."""
    return archive_run(project, run_id)


def restore(project: Project, run_id: int) -> Retired:
    """Bring an archived run back."""
    return archive_run(project, run_id, restore=True)


def delete(project: Project, run_id: int) -> Retired:
    """Delete an LLM or baseline run nothing cites, with its answers (refused otherwise)."""
    return delete_run(project, run_id)


def show_run(project: Project, run_id: int) -> RunDetail:
    """Everything about one run: its summary, parameters, versions, labels and problems."""
    with project.transaction() as session:
        row = session.exec(_query().where(col(Run.id) == run_id)).first()
        if row is None:
            raise AnnotatorError(f"no run {run_id}; `annotator runs` lists them")
        run, coder, cb, version, prompt = row
        counted = session.exec(
            select(Annotation.label, func.count())
            .where(col(Annotation.run_id) == run_id, col(Annotation.status) == "ok")
            .group_by(col(Annotation.label))
        ).all()
        labels = {label: n for label, n in counted if label is not None}  # an ok answer has a label
        errors = session.exec(
            select(Annotation.error, func.count())
            .where(col(Annotation.run_id) == run_id, col(Annotation.status) != "ok")
            .group_by(col(Annotation.error))
            .order_by(func.count().desc())
            .limit(5)
        ).all()
        cached = session.exec(
            select(func.count()).where(col(Annotation.run_id) == run_id, col(Annotation.cached).is_(True))
        ).one()
        latency = session.exec(
            select(func.avg(Annotation.latency_ms)).where(col(Annotation.run_id) == run_id)
        ).one()
        live = _live(session, [run]).get(run_id)
        batches = open_batches(session, [run_id]).get(run_id)
    info = _summary(
        run, coder, f"{cb}@{version}" if cb else None, prompt.ref if prompt else None, live, batches
    )
    return RunDetail(
        **{f.name: getattr(info, f.name) for f in fields(info)},
        params=run.params.get("model_params", run.params),
        sample=run.sample,
        versions=run.versions,
        labels=labels,
        cached=cached,
        mean_latency_ms=round(latency, 1) if latency else None,
        problems=[Problem(error=e, count=n) for e, n in errors],
        prompt_sha256=prompt.sha256 if prompt else None,
        prompt_frozen_at=prompt.frozen_at.isoformat(timespec="seconds")
        if prompt and prompt.frozen_at
        else None,
        spec_sha256=run.spec_sha256,
        source=run.source,
    )
