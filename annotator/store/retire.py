"""Retiring runs: archive (hidden, kept for provenance) and delete (gone, only when nothing cites it).

An archived run stays in the database with every answer, so a report or an export that cited it can still be
traced; it is left out of `annotator runs`, of the runs that agreement, validate and compare take by default,
and of the report (which says how many it leaves out). A run named explicitly (`--runs 7`) is still used.

Deleting is for a run nothing depends on: an LLM or baseline run that no stored result (agreement, validate,
compare) cites. Human and gold imports hold codes that came from a file and are not deleted here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col, select

from annotator.errors import AnnotatorError
from annotator.project import Project
from annotator.store.batches import open_batches
from annotator.store.lease import lease_alive
from annotator.store.models import Annotation, Metric, Run, RunDocument, utcnow

DELETABLE_KINDS = ("llm", "baseline")


@dataclass
class Retired:
    run_id: int
    action: str  # "archived", "restored", "deleted"
    answers: int = 0  # answers removed (delete)


def _run(session: Session, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise AnnotatorError(f"no run {run_id}; `annotator runs --all` lists them")
    return run


def _mentions(value: Any, run_id: int) -> bool:
    """Whether a stored result's parameters or figures name the run: every per-run entry of agreement,
    validate and compare carries ``run_id``; compare's parameters list the runs asked for."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("run_id", "best_run") and item == run_id and not isinstance(item, bool):
                return True
            if key in ("runs", "run_ids") and isinstance(item, list) and run_id in item:
                return True
            if _mentions(item, run_id):
                return True
    elif isinstance(value, list):
        return any(_mentions(item, run_id) for item in value)
    return False


def cites(row: Metric, run_id: int) -> bool:
    """Whether a stored result (an agreement, validation or comparison row) cites the run."""
    return row.run_id == run_id or _mentions(row.params, run_id) or _mentions(row.result, run_id)


def citing_results(session: Session, run_id: int) -> list[Metric]:
    """The stored results that cite the run."""
    return [m for m in session.exec(select(Metric).order_by(col(Metric.id))).all() if cites(m, run_id)]


def archive_run(project: Project, run_id: int, restore: bool = False) -> Retired:
    """Archive a run (or bring it back with ``restore``)."""
    with project.transaction() as session:
        run = _run(session, run_id)
        if restore:
            if run.archived_at is None:
                raise AnnotatorError(f"run {run_id} is not archived")
            run.archived_at = None
            # when it came back: a stored result made before (a leaderboard without it) is out of date
            run.params = {**(run.params or {}), "restored_at": utcnow().isoformat()}
        else:
            if run.archived_at is not None:
                raise AnnotatorError(
                    f"run {run_id} is already archived (since {run.archived_at:%Y-%m-%d %H:%M} UTC); "
                    f"`annotator runs restore {run_id}` brings it back"
                )
            run.archived_at = utcnow()
        session.add(run)
    return Retired(run_id, "restored" if restore else "archived")


def deletion_plan(project: Project, run_id: int) -> dict[str, Any]:
    """What deleting a run would remove; raises when something depends on it."""
    with project.transaction() as session:
        run = _run(session, run_id)
        if run.kind not in DELETABLE_KINDS:
            raise AnnotatorError(
                f"run {run_id} is a {run.kind} import: its codes came from a file and other figures rest on "
                f"them; `annotator runs archive {run_id}` hides it instead"
            )
        if run.status == "running" and lease_alive(run):
            raise AnnotatorError(
                f"run {run_id} is being labeled by a live process (pid {run.lease_pid}); stop it first"
            )
        if open_batches(session, [run_id]):
            raise AnnotatorError(
                f"run {run_id} has batches still open at its provider (paid for, not collected yet): "
                f"`annotator run --resume {run_id}` collects them first"
            )
        cited = citing_results(session, run_id)
        if cited:
            shown = ", ".join(f"{m.kind} #{m.id} ({m.created_at:%Y-%m-%d})" for m in cited[:5])
            more = f" and {len(cited) - 5} more" if len(cited) > 5 else ""
            raise AnnotatorError(
                f"run {run_id} is cited by {len(cited)} stored result(s): {shown}{more}; a report made from "
                f"them would name a run that no longer exists. `annotator runs archive {run_id}` hides it and "
                "keeps the provenance"
            )
        answers = len(session.exec(select(Annotation.id).where(col(Annotation.run_id) == run_id)).all())
        return {"run": run_id, "kind": run.kind, "model": run.model, "answers": answers}


def delete_run(project: Project, run_id: int) -> Retired:
    """Delete a run nothing cites, with its answers and its asked set (one transaction)."""
    plan = deletion_plan(project, run_id)
    with project.transaction() as session:
        connection = session.connection()
        connection.execute(delete(Annotation).where(col(Annotation.run_id) == run_id))
        connection.execute(delete(RunDocument).where(col(RunDocument.run_id) == run_id))
        connection.execute(delete(Run).where(col(Run.id) == run_id))
    return Retired(run_id, "deleted", plan["answers"])
