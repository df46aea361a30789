"""Listing and describing runs (every kind: imports, LLM runs, baselines)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import col, func, select

from annotator.errors import AnnotatorError
from annotator.project import Project
from annotator.store.models import Annotation, CodebookVersion, Coder, PromptVersion, Run


def _summary(run: Run, coder: str, codebook: str | None, prompt: str | None) -> dict[str, Any]:
    elapsed = (run.finished_at - run.started_at).total_seconds() if run.finished_at else None
    return {
        "id": run.id,
        "coder": coder,
        "kind": run.kind,
        "model": run.model,
        "prompt": prompt,
        "codebook": codebook,
        "split": run.split,
        "status": run.status,
        "items": run.n_items,
        "ok": run.n_ok,
        "invalid": run.n_invalid,
        "error": run.n_error,
        "tokens_in": run.tokens_in,
        "tokens_out": run.tokens_out,
        "cost_usd": round(run.cost_usd, 6),
        "started": run.started_at.isoformat(timespec="seconds"),
        "finished": run.finished_at.isoformat(timespec="seconds") if run.finished_at else None,
        "elapsed_s": round(elapsed, 1) if elapsed is not None else None,
        "message": run.error,
    }


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


def list_runs(project: Project, kind: str | None = None) -> list[dict[str, Any]]:
    with project.transaction() as session:
        rows = session.exec(_query(kind)).all()
    return [
        _summary(run, coder, f"{cb}@{v}" if cb else None, p.ref if p else None)
        for run, coder, cb, v, p in rows
    ]


def show_run(project: Project, run_id: int) -> dict[str, Any]:
    with project.transaction() as session:
        row = session.exec(_query().where(col(Run.id) == run_id)).first()
        if row is None:
            raise AnnotatorError(f"no run {run_id}; `annotator runs` lists them")
        run, coder, cb, version, prompt = row
        labels = dict(
            session.exec(
                select(Annotation.label, func.count())
                .where(col(Annotation.run_id) == run_id, col(Annotation.status) == "ok")
                .group_by(col(Annotation.label))
            ).all()
        )
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
    info = _summary(run, coder, f"{cb}@{version}" if cb else None, prompt.ref if prompt else None)
    info.update(
        params=run.params.get("model_params", run.params),
        sample=run.sample,
        versions=run.versions,
        labels=labels,
        cached=cached,
        mean_latency_ms=round(latency, 1) if latency else None,
        problems=[{"error": e, "count": n} for e, n in errors],
        prompt_sha256=prompt.sha256 if prompt else None,
        prompt_frozen_at=prompt.frozen_at.isoformat(timespec="seconds")
        if prompt and prompt.frozen_at
        else None,
        spec_sha256=run.spec_sha256,
        source=run.source,
    )
    return info
