"""What the report computes itself where nothing fresh is stored: reliability under the coverage rule (not
stored) and the test-split leaderboard (stored, like any `annotator compare`), so that a methods appendix
never shows a figure computed on the wrong units, nor leaves them out because a command was not run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import col

from annotator.project import Project
from annotator.services.results import LEGACY, readable, schema_of
from annotator.store.models import CodebookVersion, Metric, Run, utcnow

from .fmt import redact, utc


def last_change(run: Run) -> datetime | None:
    """When a run last changed: its end (its start while it runs), or its restore from the archive if later."""
    ended = utc(run.finished_at or run.started_at)
    restored = (run.params or {}).get("restored_at")
    back = utc(datetime.fromisoformat(restored)) if isinstance(restored, str) else None
    return max((t for t in (ended, back) if t is not None), default=None)


def agreement_now(project: Project, stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reliability computed for the report where none is stored (or only one from before the coverage rule, or
    of a schema this version does not read): each codebook with human codes, on the dev and test splits, with
    the default settings. Not stored."""
    from annotator.errors import AnnotatorError
    from annotator.services.agreement import compute_agreement, load_codes

    have = {(a["params"].get("codebook"), a["split"]) for a in stored}
    matrices = []
    with project.transaction() as session:
        books = sorted(
            set(
                session.execute(
                    sa_select(col(CodebookVersion.name))
                    .join(Run, col(Run.codebook_id) == col(CodebookVersion.id))
                    .where(col(Run.kind) == "human")
                )
                .scalars()
                .all()
            )
        )
        for book in books:
            for split in ("dev", "test"):
                if (book, split) in have:
                    continue
                try:
                    matrix = load_codes(session, book, split)
                except AnnotatorError:
                    continue
                humans = [c for c in matrix.coders if c.kind == "human"]
                if humans and len(matrix.coders) >= 2:
                    matrices.append((book, split, matrix))
    out = []
    for book, split, matrix in matrices:
        try:
            result = compute_agreement(matrix)
        except AnnotatorError:
            continue
        out.append(
            {
                "metric_id": None,
                "created_at": utcnow(),
                "split": split,
                "params": {"codebook": book},
                "result": redact(result),
                "earlier": 0,
                "stale_runs": [],
                "computed_now": True,
            }
        )
    return out


def comparisons(
    project: Project, rows: list[Metric], runs: dict[int, Run], validation: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The leaderboard and pairwise tests on the test split: the latest stored `compare` per gold coder and
    codebook, or computed now (and stored) where none is, or where the stored one predates the coverage rule
    or a change to one of its runs, or is of a schema this version does not read (``fresh_compare``)."""
    from annotator.errors import AnnotatorError
    from annotator.services.compare import compare

    latest: dict[tuple[Any, Any], Metric] = {}
    for row in rows:
        if row.split == "test" and not row.params.get("runs") and not row.params.get("prompts"):
            latest[(row.params.get("gold"), row.params.get("codebook"))] = row
    out = []
    wanted = {(v["gold"], v["codebook"]) for v in validation if v["split"] == "test" and not v["by"]}
    for key in sorted(wanted | set(latest), key=repr):
        stored = latest.get(key)
        if stored is not None and fresh_compare(stored, runs):
            out.append(
                {
                    "metric_id": stored.id,
                    "created_at": utc(stored.created_at),
                    "result": redact(stored.result),
                }
            )
            continue
        try:
            result = compare(project, gold=key[0], split="test", codebook=key[1])
        except AnnotatorError:
            continue
        out.append(
            {"metric_id": result.metric_id, "created_at": utcnow(), "result": redact(result.to_json())}
        )
    return out


def fresh_compare(row: Metric, runs: dict[int, Run]) -> bool:
    """A stored leaderboard of this version's shape (rows stored before results carried a schema: computed
    under the coverage rule, every run with its alpha vs the human majority), after the last change to any of
    its runs and after any LLM or baseline run was made. Any other is computed again."""
    entries = (row.result or {}).get("runs", [])
    if schema_of(row.result) == LEGACY:
        if not all("alpha_vs_majority" in e for e in entries):
            return False
    elif not readable("compare", row.result):
        return False
    created = utc(row.created_at)
    # a run of its own that changed since, or any LLM or baseline run made since (the stored board lacks it)
    changed = [
        r.id
        for r in runs.values()
        if r.kind in ("llm", "baseline")
        and r.archived_at is None
        and (t := last_change(r)) is not None
        and created
        and t > created
    ]
    # a run on the board that is archived now (the report leaves archived runs out)
    gone = [e for e in entries if (r := runs.get(e.get("run_id", -1))) is not None and r.archived_at]
    return not changed and not gone
