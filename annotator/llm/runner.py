"""Run a labeling job end to end: resolve the request, find or create the run, start the local model if
asked for, drive the engine, and leave the run `done`, `interrupted` or `failed` with every answer saved."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from annotator.llm.labeler import Engine, ProgressCallback, Stats
from annotator.llm.providers import api_key, cost, price
from annotator.llm.runstore import RunStore
from annotator.llm.spec import ResolvedRun, RunError, RunRequest, resolve
from annotator.project import Project
from annotator.store.models import Run

Notify = Callable[[str], None]


@dataclass
class RunOutcome:
    run_id: int
    status: str
    stats: Stats
    elapsed_s: float
    message: str | None
    run: Run
    complete: bool = True  # False when the run stopped early for a reason other than --max-cost


def _local_identity(name: str) -> tuple[Path | None, str | None]:
    """The gguf file of a local model (None if not pulled yet) and its sha256 for the run spec."""
    from annotator.llm import local

    known = local.LOCAL_MODELS.get(name)
    if known is not None:
        try:
            return local.resolve(name), known.sha256
        except Exception:  # not pulled yet: ensure() pulls it when the run starts
            return None, known.sha256
    path = local.resolve(name)
    return path, local.file_sha256(path)


def resolve_request(project: Project, request: RunRequest) -> ResolvedRun:
    model_name = request.model or project.default_model
    local_sha = None
    if model_name.startswith("local/"):
        _, local_sha = _local_identity(model_name.removeprefix("local/"))
    with project.transaction() as session:
        return resolve(project, session, request, local_sha)


def plan(project: Project, request: RunRequest) -> dict[str, Any]:
    """What a run would do, without calling any model: one rendered prompt, how many answers it would ask
    for (after what the run already has and what the cache holds), and cost and time estimates."""
    from sqlmodel import col, select

    from annotator.llm import cache
    from annotator.store.models import Annotation

    resolved = resolve_request(project, request)
    items = resolved.items()
    with project.transaction() as session:
        existing = session.exec(select(Run).where(col(Run.spec_sha256) == resolved.spec_sha256)).first()
        done: set[tuple[int, int]] = set()
        if existing is not None:
            done = {
                (d, r)
                for d, r in session.exec(
                    select(Annotation.document_id, Annotation.repeat).where(
                        col(Annotation.run_id) == existing.id, col(Annotation.status) != "error"
                    )
                )
            }
        todo = [i for i in items if (i.document_id, i.repeat) not in done]
        keys = (
            [
                cache.cache_key(
                    resolved.spec["model"],
                    resolved.messages(i),
                    resolved.params_for(i.repeat),
                    resolved.spec["schema_sha256"],
                    resolved.logprobs,
                    i.repeat,
                )
                for i in todo
            ]
            if request.cache
            else []
        )
        cached = len(cache.lookup(session, keys)) if keys else 0
    first = resolved.messages(items[0])
    chars = sum(len(m["content"]) for m in first)
    tokens_in = chars // 4 + 10 * len(first)  # about 4 characters a token in English
    bounded = "max_tokens" in resolved.params
    tokens_out = int(resolved.params["max_tokens"]) if bounded else 64
    to_ask = len(todo) - cached
    prices = price(resolved.model, project.settings.get("prices"))
    per_item = cost(prices, tokens_in, tokens_out)
    concurrency = request.concurrency or resolved.model.info.concurrency
    seconds_per_item = 0.6 if resolved.model.provider != "local" else 1.0 + tokens_out / 85
    return {
        "prompt": str(resolved.template.ref),
        "codebook": resolved.codebook.ref,
        "model": str(resolved.model),
        "params": resolved.params,
        "split": request.split,
        "documents": len(resolved.documents),
        "repeats": request.repeats,
        "items": len(items),
        "already_done": len(done),
        "from_cache": cached,
        "to_ask": to_ask,
        "existing_run": existing.id if existing is not None else None,
        "messages": first,
        "example_document": items[0].doc_key,
        "tokens_in_per_item": tokens_in,
        "tokens_out_per_item": tokens_out,
        "max_tokens_set": bounded,
        "price_per_million": prices,
        "cost_usd": None if per_item is None else round(per_item * to_ask, 4),
        "time_s": round(to_ask * seconds_per_item / concurrency, 1),
        "concurrency": concurrency,
    }


@contextmanager
def _endpoint(resolved: ResolvedRun, concurrency: int, notify: Notify) -> Iterator[str]:
    """The base URL for the run; for local models, a server started for the run and stopped after."""
    ref = resolved.model
    if ref.provider != "local":
        assert ref.base_url is not None
        yield ref.base_url
        return
    from annotator.llm import local

    path = local.ensure(ref.model, progress=notify)
    notify(f"starting the local model {ref.model} ({path.name})")
    # each slot reserves its own context: more than a few slots only cost memory on a small machine
    with local.LocalServer(path, parallel=min(concurrency, 4)) as server:
        yield server.base_url


def label(
    project: Project,
    request: RunRequest,
    progress: ProgressCallback | None = None,
    resume_id: int | None = None,
    notify: Notify | None = None,
) -> RunOutcome:
    """Label the documents a request selects; returns when the run is done, stopped or failed.

    Ctrl-C stops it (the run is left `interrupted` with every finished answer saved) and re-raises
    KeyboardInterrupt; an abort (bad key, unknown model) leaves it `failed` and raises the error.
    """
    notify = notify or (lambda _message: None)
    resolved = resolve_request(project, request)
    # every check a user can fail comes before the run is created or touched
    concurrency = request.concurrency or resolved.model.info.concurrency
    prices = price(resolved.model, project.settings.get("prices"))
    if request.max_cost is not None and prices is None:
        raise RunError(
            f'--max-cost needs a price for {resolved.model}: add [prices."{resolved.model}"] input = ... '
            "output = ... (USD per million tokens) to annotator.toml"
        )
    key = api_key(resolved.model, project.root)
    store = RunStore(project, resolved)
    _, done = store.open(resume_id)
    items = [i for i in resolved.items() if done.get((i.document_id, i.repeat)) not in ("ok", "invalid")]
    stats = Stats(total=len(resolved.items()), before=len(resolved.items()) - len(items))
    start = time.perf_counter()
    status, message = "done", None
    engine: Engine | None = None
    try:
        if items:
            with _endpoint(resolved, concurrency, notify) as base_url:
                engine = Engine(resolved, store, base_url, key, concurrency, prices, stats, progress)
                engine.spent_before = store.spent()
                asyncio.run(engine.run(items))
            if engine.aborted is not None:
                status, message = "failed", str(engine.aborted)
            elif engine.cost_capped:
                spent = store.spent()
                status, message = (
                    "interrupted",
                    (
                        f"stopped before exceeding --max-cost ${request.max_cost:g} (the run has cost ${spent:.4f})"
                    ),
                )
            elif engine.stop_reason is not None:
                status, message = "interrupted", engine.stop_reason
    except KeyboardInterrupt:
        store.finish("interrupted", "stopped by Ctrl-C", engine.server_model if engine else None)
        raise
    except BaseException as exc:
        store.finish("failed", f"{type(exc).__name__}: {exc}", engine.server_model if engine else None)
        raise
    final = store.finish(status, message, engine.server_model if engine else None)
    if engine is not None and engine.aborted is not None:
        raise engine.aborted
    complete = status == "done" or (engine is not None and engine.cost_capped)
    return RunOutcome(final.id or 0, status, stats, time.perf_counter() - start, message, final, complete)


def resume(
    project: Project,
    run_id: int,
    progress: ProgressCallback | None = None,
    notify: Notify | None = None,
    **overrides: Any,
) -> RunOutcome:
    """Continue a run: ask only for what is missing (and retry items that ended in an error)."""
    with project.transaction() as session:
        run = session.get(Run, run_id)
        if run is None or run.kind != "llm":
            raise RunError(f"no LLM run {run_id}; `annotator runs` lists them")
        stored = dict(run.params.get("request") or {})
    stored["base_url"] = overrides.pop("base_url", None) or run.params.get("base_url")
    request = replace(RunRequest(**stored), **{k: v for k, v in overrides.items() if v is not None})
    return label(project, request, progress, resume_id=run_id, notify=notify)
