"""Everything the report shows, read from the project's database into plain data (no formatting here).

The report documents what was actually run: stored metrics rows are read back (the latest of each analysis,
with its creation time), never recomputed. Everything taken from run parameters, versions and messages is
passed through ``redact`` so that no credential reaches a report.
"""

from __future__ import annotations

import platform
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import col, select

from annotator import __version__
from annotator.project import Project
from annotator.services.agreement import RUN_KINDS
from annotator.services.results import LEGACY, SCHEMAS, readable, schema_of
from annotator.services.runs import list_runs
from annotator.services.status import project_status
from annotator.services.validation import RunInfo, freeze_status
from annotator.store import db
from annotator.store.models import CodebookVersion, Document, Metric, PromptVersion, Run, SplitEvent, utcnow
from annotator.store.retire import cites as citing

from .computed import agreement_now, comparisons, last_change
from .fmt import redact, scrub_text, utc

RUN_KIND_ORDER = ("gold", "human", "llm", "baseline")
# agreement rows that differ only in these parameters are the same analysis: the latest is shown
AGREEMENT_SAME = ("n_boot", "seed", "compare", "ci")
MAX_ESTIMATES = 5  # the most recent distinct estimates shown (the latest of each run, split, by and gold)


def _database(project: Project) -> dict[str, Any]:
    engine = project.engine
    backend = engine.dialect.name
    where = db.describe(engine)
    if backend == "sqlite":  # a path on the author's machine says nothing to a reviewer: the file name only
        path = Path(where)
        try:
            where = str(path.relative_to(project.root))
        except ValueError:
            where = path.name
    return {"backend": backend, "where": scrub_text(where), "schema": db.current_revision(engine)}


def _agreement(rows: list[Metric], runs: dict[int, Run]) -> list[dict[str, Any]]:
    latest: dict[str, Metric] = {}
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        key = repr(sorted((k, repr(v)) for k, v in row.params.items() if k not in AGREEMENT_SAME))
        key = f"{row.split}|{key}"
        counts[key] += 1
        latest[key] = row  # rows come in id order: the last one wins
    out = []
    for key, row in latest.items():
        if not _current_agreement(row):
            continue  # not of the coverage rule's kind, or of another version's shape (recomputed below)
        created = utc(row.created_at)
        run_ids = sorted({c["run_id"] for c in row.result.get("coders", []) if c.get("run_id") is not None})
        changed = [
            i
            for i in run_ids
            if i in runs and (t := last_change(runs[i])) is not None and created and t > created
        ]
        out.append(
            {
                "metric_id": row.id,
                "created_at": created,
                "split": row.split,
                "params": redact(row.params),
                "result": redact(row.result),
                "earlier": counts[key] - 1,
                "stale_runs": changed,
                "computed_now": False,
            }
        )
    return sorted(out, key=lambda a: (a["params"].get("codebook") or "", a["split"] or "", a["metric_id"]))


def _current_agreement(row: Metric) -> bool:
    """A stored agreement of this version's shape. Rows stored before results carried a schema are read
    when they follow the coverage rule (they have ``min_units``): earlier ones pooled every unit."""
    if schema_of(row.result) == LEGACY:
        return "min_units" in (row.result or {})
    return readable("agreement", row.result)


def _unreadable(metrics: list[Metric]) -> list[dict[str, Any]]:
    """Stored results of a schema this version does not read (written by another version): left out."""
    return [
        {"metric_id": m.id, "kind": m.kind, "schema": schema_of(m.result), "reads": SCHEMAS[m.kind]}
        for m in metrics
        if m.kind in SCHEMAS and not readable(m.kind, m.result)
    ]


def _headlines(validation: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each run's validated figures on the test split (against each gold coder), for the summary."""
    out = []
    for table in validation:
        if table["split"] != "test" or table["by"]:
            continue
        for e in table["entries"]:
            f = e["figures"]
            out.append({"gold": table["gold"], "stale": e["stale"]} | f)
    return sorted(out, key=lambda f: (f.get("run_id") or 0, str(f["gold"])))


def _codebook_use(runs: list[Run], codebooks: list[CodebookVersion]) -> dict[str, Any]:
    """Which codebook versions the humans coded under and which the LLM ran under: the report says the two
    were given the same codebook only when they were."""
    ref = {c.id: f"{c.name}@{c.version}" for c in codebooks}
    human = sorted({ref[r.codebook_id] for r in runs if r.kind in ("human", "gold") and r.codebook_id in ref})
    llm = sorted({ref[r.codebook_id] for r in runs if r.kind == "llm" and r.codebook_id in ref})
    if not human or not llm:
        line = None
    elif set(llm) <= set(human):
        line = f"Humans and the LLM coded under the same codebook version ({', '.join(llm)})."
    else:
        line = (
            f"The LLM runs used codebook version(s) {', '.join(llm)}; the human codes were imported under "
            f"{', '.join(human)}: they were not given the same codebook."
        )
    return {"human": human, "llm": llm, "line": line}


def _validation(rows: list[Metric], runs: dict[int, Run]) -> list[dict[str, Any]]:
    """The latest validation of each run per (gold, split, codebook, by), grouped into one table per analysis."""
    latest: dict[tuple[Any, ...], Metric] = {}
    counts: dict[tuple[Any, ...], int] = defaultdict(int)
    for row in rows:
        p = row.params
        key = (p.get("gold"), row.split, p.get("codebook"), p.get("by"), row.run_id)
        counts[key] += 1
        latest[key] = row
    tables: dict[tuple[Any, ...], dict[str, Any]] = {}
    for key, row in latest.items():
        if not readable("validation", row.result):
            continue  # another version's shape: left out (listed among the unreadable results)
        result = redact(row.result)
        entry = result.pop("run", {})
        created = utc(row.created_at)
        run = runs.get(row.run_id) if row.run_id is not None else None
        last = last_change(run) if run is not None else None
        table = tables.setdefault(
            key[:4],
            {
                "gold": key[0],
                "split": key[1],
                "codebook": key[2],
                "by": key[3],
                "common": result,
                "entries": [],
            },
        )
        if table["common"].get("_created") is None or (created and created > table["common"]["_created"]):
            table["common"] = result | {"_created": created}
        table["entries"].append(
            {
                "metric_id": row.id,
                "created_at": created,
                "earlier": counts[key] - 1,
                "stale": bool(last and created and last > created),
                "run_missing": run is None,
                "figures": entry,
            }
        )
    out = []
    for table in tables.values():
        table["entries"].sort(key=lambda e: e["figures"].get("run_id") or 0)
        table["common"].pop("_created", None)
        out.append(table)
    order = {"test": 0, "dev": 1, "all": 2}
    return sorted(
        out, key=lambda t: (order.get(t["split"], 3), str(t["codebook"]), str(t["gold"]), str(t["by"]))
    )


def _estimates(rows: list[Metric], runs: dict[int, Run]) -> dict[str, Any]:
    """The latest stored `annotator estimate` of each (run, split, by, gold coder), the ``MAX_ESTIMATES`` most
    recent first, and the latest `estimate --across-runs`; rows of a schema this version does not read are
    left out (listed among the unreadable results)."""
    latest: dict[tuple[Any, ...], Metric] = {}
    counts: dict[tuple[Any, ...], int] = defaultdict(int)
    for row in rows:
        if row.kind == "estimate" and readable("estimate", row.result):
            r = row.result or {}
            key = (
                row.run_id if row.run_id is not None else r.get("run_id"),
                row.split,
                r.get("by"),
                r.get("gold"),
            )
            counts[key] += 1
            latest[key] = row  # rows come in id order: the last one wins
    newest = sorted(latest.items(), key=lambda kv: kv[1].id or 0, reverse=True)
    shown = [
        _stored(row, [key[0]], runs) | {"earlier": counts[key] - 1} for key, row in newest[:MAX_ESTIMATES]
    ]
    across = [m for m in rows if m.kind == "estimate_runs" and readable("estimate_runs", m.result)]
    cited = [f.get("run_id") for f in (across[-1].result or {}).get("runs") or []] if across else []
    return {
        "shown": shown,
        "not_shown": len(newest) - len(shown),
        "across": _stored(across[-1], cited, runs) | {"earlier": len(across) - 1} if across else None,
    }


def _stored(row: Metric, run_ids: list[Any], runs: dict[int, Run]) -> dict[str, Any]:
    """A stored result as the report shows it: redacted, when it was computed, and the runs it cites that
    changed after that."""
    created = utc(row.created_at)
    changed = [
        i
        for i in run_ids
        if i in runs and (t := last_change(runs[i])) is not None and created and t > created
    ]
    return {"metric_id": row.id, "created_at": created, "result": redact(row.result), "stale_runs": changed}


def _freezing(runs: list[Run], prompts: dict[int, PromptVersion]) -> dict[str, Any]:
    """When each run's prompt was frozen relative to the run's start, in the words `validate` uses."""
    lines = []
    for run in runs:
        if run.prompt_id is None or run.id is None:
            continue
        prompt = prompts.get(run.prompt_id)
        info = RunInfo.of(run, prompt)
        lines.append({"run_id": run.id, "split": run.split, "model": run.model} | freeze_status(info))
    on_test = [x for x in lines if x["split"] in ("test", "all")]
    without = [
        r.id for r in runs if r.prompt_id is None and r.kind in RUN_KINDS and r.split in ("test", "all")
    ]
    return {
        "runs": lines,
        "test": on_test,
        "violations": [x for x in on_test if not x["frozen_before_run"]],
        "test_without_prompt": without,
    }


def _costs(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("items", "ok", "invalid", "error", "tokens_in", "tokens_out", "cost_usd", "elapsed_s")
    by_kind: dict[str, dict[str, Any]] = {}
    for s in summaries:
        bucket = by_kind.setdefault(s["kind"], {"kind": s["kind"], "runs": 0} | dict.fromkeys(keys, 0))
        bucket["runs"] += 1
        for k in keys:
            bucket[k] += s.get(k) or 0
    total = {"kind": "all", "runs": len(summaries)} | {k: sum(b[k] for b in by_kind.values()) for k in keys}
    ordered = sorted(
        by_kind.values(),
        key=lambda b: RUN_KIND_ORDER.index(b["kind"]) if b["kind"] in RUN_KIND_ORDER else 99,
    )
    return {"by_kind": ordered, "total": total}


def _versions(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for s in summaries:
        versions = s.get("versions") or {}
        if not versions:
            continue
        key = repr(sorted(versions.items()))
        groups.setdefault(key, {"versions": versions, "runs": []})["runs"].append(s["id"])
    return list(groups.values())


def gather(project: Project) -> dict[str, Any]:
    from annotator.services.workbench.process import coding_process

    """The report's content as plain data; ``render`` turns it into HTML or Markdown."""
    status = project_status(project)
    summaries = [s.to_json() for s in list_runs(project)]
    with project.transaction() as session:
        runs = list(session.exec(select(Run).order_by(col(Run.id))).all())
        codebooks = list(
            session.exec(
                select(CodebookVersion).order_by(col(CodebookVersion.name), col(CodebookVersion.version))
            ).all()
        )
        prompts = list(
            session.exec(
                select(PromptVersion).order_by(
                    col(PromptVersion.codebook), col(PromptVersion.name), col(PromptVersion.version)
                )
            ).all()
        )
        splits = list(session.exec(select(SplitEvent).order_by(col(SplitEvent.id))).all())
        metrics = list(session.exec(select(Metric).order_by(col(Metric.id))).all())
        meta_columns: set[str] = set()
        for meta in session.execute(sa_select(col(Document.meta))).scalars().all():
            meta_columns.update((meta or {}).keys())
        for row in [*runs, *codebooks, *prompts, *splits, *metrics]:
            session.expunge(row)
    by_id = {r.id: r for r in runs if r.id is not None}
    # archived runs (`annotator runs archive`) are left out, and so is every stored result that cites one
    archived = sorted(r.id for r in runs if r.archived_at is not None and r.id is not None)
    runs = [r for r in runs if r.archived_at is None]
    metrics = [m for m in metrics if not any(citing(m, i) for i in archived)]
    prompt_by_id = {p.id: p for p in prompts if p.id is not None}

    run_rows = []
    for s in summaries:
        run = by_id[s["id"]]
        prompt = prompt_by_id.get(run.prompt_id) if run.prompt_id is not None else None
        run_rows.append(
            redact(s)
            | {
                "params": redact(run.params),
                "model_params": redact(run.params.get("model_params") or {}),
                "sample": redact(run.sample),
                "versions": redact(run.versions),
                "source": scrub_text(run.source) if run.source else None,
                "message": scrub_text(run.error) if run.error else None,
                "prompt_sha256": prompt.sha256 if prompt else None,
                "started_at": utc(run.started_at),
                "finished_at": utc(run.finished_at),
            }
        )
    runs_of_prompt: dict[int, list[int]] = defaultdict(list)
    runs_of_codebook: dict[int, list[int]] = defaultdict(list)
    for run in runs:
        if run.prompt_id is not None and run.id is not None:
            runs_of_prompt[run.prompt_id].append(run.id)
        if run.codebook_id is not None and run.id is not None:
            runs_of_codebook[run.codebook_id].append(run.id)

    forced = [utc(e.created_at) for e in splits if e.forced]
    last_forced = max((t for t in forced if t is not None), default=None)
    before_resplit = (
        [
            r.id
            for r in runs
            if r.kind in RUN_KINDS and (t := utc(r.started_at)) is not None and t < last_forced
        ]
        if last_forced is not None
        else []
    )
    validation = _validation([m for m in metrics if m.kind == "validation"], by_id)
    agreement = _agreement([m for m in metrics if m.kind == "agreement"], by_id)
    agreement = sorted(
        agreement + agreement_now(project, agreement),
        key=lambda a: (a["params"].get("codebook") or "", a["split"] or "", a["metric_id"] or 0),
    )
    return {
        "resplit": {"at": last_forced, "runs_before": before_resplit},
        "project": {
            "name": status.project,
            "generated_at": utcnow(),
            "database": _database(project),
        },
        "software": {
            "annotator": __version__,
            "python": sys.version.split()[0],
            "platform": platform.platform(terse=True),
        },
        "documents": {**status.documents, "meta_columns": sorted(meta_columns)},
        "splits": [
            {
                "id": e.id,
                "created_at": utc(e.created_at),
                "test_fraction": e.test_fraction,
                "seed": e.seed,
                "stratify": e.stratify,
                "forced": e.forced,
                "scope": e.scope,
                "n_dev": e.n_dev,
                "n_test": e.n_test,
            }
            for e in splits
        ],
        "coders": status.coders,
        "codebooks": [
            {
                "ref": f"{c.name}@{c.version}",
                "name": c.name,
                "version": c.version,
                "sha256": c.sha256,
                "created_at": utc(c.created_at),
                "body": c.body,
                "runs": runs_of_codebook.get(c.id or -1, []),
            }
            for c in codebooks
        ],
        "prompts": [
            {
                "ref": p.ref,
                "sha256": p.sha256,
                "created_at": utc(p.created_at),
                "frozen_at": utc(p.frozen_at),
                "frozen_codebook_sha256": p.frozen_codebook_sha256,
                "params": redact(p.params),
                "body": p.body,
                "runs": runs_of_prompt.get(p.id or -1, []),
            }
            for p in prompts
        ],
        "runs": run_rows,
        "archived_runs": archived,
        "agreement": agreement,
        "unreadable": _unreadable(metrics),
        "validation": validation,
        "headlines": _headlines(validation),
        "comparisons": comparisons(project, [m for m in metrics if m.kind == "compare"], by_id, validation),
        "estimates": _estimates([m for m in metrics if m.kind in ("estimate", "estimate_runs")], by_id),
        "codebook_use": _codebook_use(runs, codebooks),
        "freezing": _freezing(runs, prompt_by_id),
        "costs": _costs(summaries),
        "coding": coding_process(project).to_json(),
        "versions": _versions(run_rows),
    }
